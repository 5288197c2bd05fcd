using Jetpack.Model.Checkpoints.Pickle;
using TorchSharp;
using static Jetpack.Model.Tests.Checkpoints.Pickle.PickleBytes;

namespace Jetpack.Model.Tests.Checkpoints.Pickle;

/// <summary>
/// Which dict is the state dict, what is reported beside it, and how storages shared between
/// entries come back — on hand-assembled archives, so each case is exactly the shape under test.
/// </summary>
public sealed class TorchCheckpointUnwrapTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Storage "0": the floats 0, 1, ..., 11.</summary>
    private static Dictionary<string, byte[]> Twelve => new()
    {
        ["0"] = Enumerable.Range(0, 12).SelectMany(i => BitConverter.GetBytes((float)i)).ToArray(),
    };

    private static byte[] Whole => Tensor(Storage("FloatStorage", "0", 12), 0, [3, 4], [4, 1]);

    private LoadedCheckpoint Load(byte[] pickle, Dictionary<string, byte[]>? storages = null) =>
        TorchCheckpoint.Load(PickleFixtures.WriteArchive(_dir.File($"{Guid.NewGuid():N}.pth"), pickle, storages ?? Twelve));

    private static byte[] Nested(params (string Key, byte[] Value)[] items) =>
        Of(Op.EmptyDict, Op.Mark, Of(items.Select(i => (object)Of(Str(i.Key), i.Value)).ToArray()), Op.SetItems);

    [Fact]
    public void TopLevelTensorsAreTheStateDictAndOtherLeavesAreReported()
    {
        using var checkpoint = Load(DictPickle(("w", Whole), ("epoch", Int(3)), ("lr", Float(0.5)), ("note", Raw(Op.None))));
        Assert.Null(checkpoint.NestedKey);
        Assert.Equal(["w"], checkpoint.StateDict.Keys);
        Assert.Equal(new Dictionary<string, string> { ["epoch"] = "int 3", ["lr"] = "float 0.5", ["note"] = "None" }, checkpoint.OtherKeys);
    }

    [Theory]
    [InlineData("state_dict")]
    [InlineData("model")]
    [InlineData("model_state")]
    [InlineData("module")]
    public void NestedStateDictIsUnwrapped(string key)
    {
        using var checkpoint = Load(DictPickle((key, Nested(("w", Whole), ("version", Int(2)))), ("optimizer", Nested(("step", Int(9))))));
        Assert.Equal(key, checkpoint.NestedKey);
        Assert.Equal(["w"], checkpoint.StateDict.Keys);
        Assert.Equal(new Dictionary<string, string> { ["optimizer"] = "dict (1 entries)", [$"{key}.version"] = "int 2" }, checkpoint.OtherKeys);
    }

    [Fact]
    public void StateDictKeyWinsOverModelAndTheOtherIsReported()
    {
        using var checkpoint = Load(DictPickle(("model", Nested(("a", Whole))), ("state_dict", Nested(("b", Whole)))));
        Assert.Equal("state_dict", checkpoint.NestedKey);
        Assert.Equal(["b"], checkpoint.StateDict.Keys);
        Assert.Equal("dict (1 entries)", checkpoint.OtherKeys["model"]);
    }

    [Fact]
    public void ADictWithoutTensorsLoadsEmptyAndSaysWhatItHeld()
    {
        using var checkpoint = Load(DictPickle(("ema", Nested(("w", Whole))), ("epoch", Int(1))));
        Assert.Empty(checkpoint.StateDict);
        Assert.Equal(["ema", "epoch"], checkpoint.OtherKeys.Keys);
    }

    [Fact]
    public void ATopLevelThatIsNotADictIsRefused()
    {
        var path = PickleFixtures.WriteArchive(_dir.File("list.pth"), Of(Proto(2), Op.EmptyList, Op.Stop));
        var e = Assert.Throws<TorchCheckpointFormatException>(() => TorchCheckpoint.Load(path));
        Assert.Contains("the saved object is a list, not a dict", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ATensorUnderAnIntKeyIsRefusedNamingTheKey()
    {
        var pickle = Of(Proto(2), Op.EmptyDict, Int(5), Whole, Op.SetItem, Op.Stop);
        var path = PickleFixtures.WriteArchive(_dir.File("intkey.pth"), pickle, Twelve);
        var e = Assert.Throws<TorchCheckpointFormatException>(() => TorchCheckpoint.Load(path));
        Assert.Equal("int 5", e.Key);
    }

    [Fact]
    public void TiedWeightsComeBackEqualButIndependent()
    {
        using var checkpoint = Load(DictPickle(("embed.weight", Whole), ("head.weight", Whole)));
        var embed = checkpoint.StateDict["embed.weight"];
        var head = checkpoint.StateDict["head.weight"];
        TensorAssert.Identical(embed, head);
        embed.add_(1);
        Assert.Equal(0f, head[0, 0].item<float>());
    }

    [Fact]
    public void ASoleSliceOfAStorageIsCopiedOut()
    {
        // The only user of storage "0" is its last row: the 12-float storage must not be kept alive as its base.
        using var checkpoint = Load(DictPickle(("row", Tensor(Storage("FloatStorage", "0", 12), 8, [4], [1]))));
        var row = checkpoint.StateDict["row"];
        Assert.Equal([8f, 9, 10, 11], row.data<float>().ToArray());
        Assert.Equal(0, row.storage_offset()); // a view into the storage would start at element 8
    }

    [Fact]
    public void ParameterWithStateAndTorch2StorageSpellingsLoad()
    {
        // _rebuild_parameter_with_state(data, requires_grad, hooks, state); dtype and UntypedStorage globals in the storage slot.
        var withState = Of(Global("torch._utils", "_rebuild_parameter_with_state"), Op.Mark,
                           Tensor(Storage("float32", "0", 12), 0, [12], [1]), Op.NewTrue, Op.EmptyDict, Op.EmptyDict, Op.Tuple, Op.Reduce);
        var untyped = Of(Op.Mark, Str("storage"), Global("torch.storage", "UntypedStorage"), Str("1"), Str("cuda:0"), Int(3), Op.Tuple, Op.BinPersId);
        var pickle = DictPickle(("p", withState), ("bytes", Tensor(untyped, 1, [2], [1])));
        var storages = new Dictionary<string, byte[]>(Twelve) { ["1"] = [7, 8, 9] };
        using var checkpoint = Load(pickle, storages);
        Assert.Equal(["p"], checkpoint.ParameterKeys);
        Assert.Equal(11f, checkpoint.StateDict["p"][11].item<float>());
        Assert.Equal(torch.ScalarType.Byte, checkpoint.StateDict["bytes"].dtype);
        Assert.Equal(new byte[] { 8, 9 }, checkpoint.StateDict["bytes"].data<byte>().ToArray());
    }

    [Fact]
    public void AnEmptyTensorNeedsNoBytes()
    {
        using var checkpoint = Load(DictPickle(("e", Tensor(Storage("FloatStorage", "2", 0), 0, [0, 4], [4, 1]))),
                                    new Dictionary<string, byte[]> { ["2"] = [] });
        Assert.Equal([0L, 4], checkpoint.StateDict["e"].shape);
    }
}
