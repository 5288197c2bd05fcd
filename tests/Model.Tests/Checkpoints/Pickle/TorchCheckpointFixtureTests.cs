using Jetpack.Model.Checkpoints;
using Jetpack.Model.Checkpoints.Pickle;
using TorchSharp;

namespace Jetpack.Model.Tests.Checkpoints.Pickle;

/// <summary>
/// Files written by Debian's PyTorch 1.13 (Fixtures/make_fixtures.py) load to exactly the values
/// PyTorch saved: the ViT against its safetensors twin bit for bit, every dtype, views of one
/// storage, a Parameter, and a state dict nested in a training checkpoint.
/// </summary>
public sealed class TorchCheckpointFixtureTests
{
    private static readonly string[] VitKeys =
    [
        "cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
        "blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
        "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias", "blocks.0.norm2.weight", "blocks.0.norm2.bias",
        "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc1.bias", "blocks.0.mlp.fc2.weight", "blocks.0.mlp.fc2.bias",
    ];

    [Fact]
    public void VitStateDictMatchesItsSafetensorsTwinBitForBit()
    {
        using var checkpoint = TorchCheckpoint.Load(PickleFixtures.Path("vit_micro_state_dict.pth"));
        using var reader = SafetensorsReader.Open(PickleFixtures.Path("vit_micro.safetensors"));
        Assert.Null(checkpoint.NestedKey);
        Assert.Empty(checkpoint.OtherKeys);
        Assert.Equal(reader.Names, checkpoint.StateDict.Keys); // same keys, in torch's order
        foreach (var key in VitKeys.Concat(["blocks.1.mlp.fc2.bias", "norm.weight", "norm.bias", "head.weight", "head.bias"]))
            Assert.Contains(key, checkpoint.StateDict.Keys);
        foreach (var name in reader.Names)
        {
            using var expected = reader.ReadTensor(name);
            var actual = checkpoint.StateDict[name];
            TensorAssert.Identical(expected, actual);
            Assert.True(actual.is_contiguous(), name);
            Assert.False(actual.requires_grad, name);
        }
        Assert.Equal([1L, 5, 8], checkpoint.StateDict["pos_embed"].shape);
        Assert.Equal([8L, 3, 4, 4], checkpoint.StateDict["patch_embed.proj.weight"].shape);
        Assert.Equal([24L, 8], checkpoint.StateDict["blocks.0.attn.qkv.weight"].shape);
        Assert.Empty(checkpoint.ParameterKeys); // state_dict() saves param.detach(): tensors, not Parameters
    }

    [Fact]
    public void LoadStateDictReturnsTheSameTensors()
    {
        var stateDict = TorchCheckpoint.LoadStateDict(PickleFixtures.Path("vit_micro_state_dict.pth"));
        try
        {
            Assert.Equal(2 + 2 + 12 * 2 + 2 + 2, stateDict.Count);
        }
        finally
        {
            foreach (var tensor in stateDict.Values)
                tensor.Dispose();
        }
    }

    [Fact]
    public void WrappedCheckpointUnwrapsModelAndReportsTheRest()
    {
        using var wrapped = TorchCheckpoint.Load(PickleFixtures.Path("wrapped.pth"));
        using var plain = TorchCheckpoint.Load(PickleFixtures.Path("vit_micro_state_dict.pth"));
        Assert.Equal("model", wrapped.NestedKey);
        Assert.Equal(new Dictionary<string, string> { ["epoch"] = "int 3", ["optimizer_name"] = "str 'adamw'" }, wrapped.OtherKeys);
        // Keys come back as saved: stripping "module." is the caller's key mapping.
        Assert.All(wrapped.StateDict.Keys, k => Assert.StartsWith("module.", k, StringComparison.Ordinal));
        Assert.Equal(plain.StateDict.Count, wrapped.StateDict.Count);
        foreach (var (key, tensor) in plain.StateDict)
            TensorAssert.Identical(tensor, wrapped.StateDict["module." + key]);
    }

    [Theory]
    [InlineData("dtypes.pth")]
    [InlineData("dtypes_protocol4.pth")]
    public void EveryDtypeLoadsExactly(string file)
    {
        using var checkpoint = TorchCheckpoint.Load(PickleFixtures.Path(file));
        var sd = checkpoint.StateDict;
        Expect(sd["f16"], torch.tensor(new[] { 1.5f, -2.0f, 65504f }).to(torch.float16));
        Expect(sd["bf16"], torch.tensor(new[] { 1.0f, -3.0f, 0.5f }).to(torch.bfloat16));
        Expect(sd["f64"], torch.tensor(new[] { 1e300, -0.0, 2.5 }));
        Expect(sd["i64"], torch.tensor(new[] { 0L, -1L, 1L << 40, long.MaxValue }));
        Expect(sd["i32"], torch.tensor(new[] { int.MinValue, 7 }));
        Expect(sd["i16"], torch.tensor(new short[] { -300, 300 }));
        Expect(sd["i8"], torch.tensor(new sbyte[] { -128, 127 }));
        Expect(sd["u8"], torch.tensor(new byte[] { 0, 128, 255 }));
        Expect(sd["bool"], torch.tensor(new[] { true, false, false, true }).reshape(2, 2));
        Expect(sd["scalar"], torch.tensor(3.5f));
        Assert.Empty(sd["scalar"].shape);
        Assert.Empty(checkpoint.OtherKeys);
    }

    [Theory]
    [InlineData("dtypes.pth")]
    [InlineData("dtypes_protocol4.pth")]
    public void ViewsTransposesAndParametersRebuildAsContiguousOwnedTensors(string file)
    {
        using var checkpoint = TorchCheckpoint.Load(PickleFixtures.Path(file));
        var sd = checkpoint.StateDict;
        // a = arange(12).reshape(3, 4); row = a[1]; col = a[:, 2] — three views of one storage.
        Expect(sd["a"], torch.arange(12, dtype: torch.float32).reshape(3, 4));
        Expect(sd["row"], torch.tensor(new[] { 4f, 5, 6, 7 }));
        Expect(sd["col"], torch.tensor(new[] { 2f, 6, 10 }));
        // arange(6).reshape(2, 3).t(): saved with strides (1, 3), loaded contiguous.
        Expect(sd["transposed"], torch.tensor(new[] { 0f, 3, 1, 4, 2, 5 }).reshape(3, 2));
        Expect(sd["param"], torch.tensor(new[] { 0.25f, -0.5f }).reshape(1, 2));
        Assert.Equal(["param"], checkpoint.ParameterKeys);
        Assert.False(sd["param"].requires_grad); // a state dict for load_state_dict, not trainable leaves

        foreach (var (key, tensor) in sd)
            Assert.True(tensor.is_contiguous(), $"{key} is not contiguous");
        // Owned: writing through one view of the shared storage must not show in the others.
        sd["a"].fill_(-1);
        Expect(sd["row"], torch.tensor(new[] { 4f, 5, 6, 7 }));
        Expect(sd["col"], torch.tensor(new[] { 2f, 6, 10 }));
    }

    /// <summary>Exact comparison; disposes <paramref name="expected"/>.</summary>
    private static void Expect(torch.Tensor actual, torch.Tensor expected)
    {
        using (expected)
            TensorAssert.Identical(expected, actual);
    }
}
