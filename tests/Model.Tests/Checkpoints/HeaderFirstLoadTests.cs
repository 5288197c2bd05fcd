using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Checkpoints.Pickle;
using Jetpack.Model.Models;
using Jetpack.Model.Recycling;
using Jetpack.Model.Registry;
using Jetpack.Model.Tests.Checkpoints.Pickle;
using TorchSharp;
using static Jetpack.Model.Tests.Checkpoints.Pickle.PickleBytes;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>
/// Issue 12, item 2: loaders against a known model decide from the header (or pickle) which
/// tensors to read; an unexpected or mis-shaped tensor is refused or skipped without reading it.
/// </summary>
public sealed class HeaderFirstLoadTests : IDisposable
{
    private static readonly ModelSpec Micro = new("vit_micro", Vit: new VitConfig { ImageSize = 8, PatchSize = 4, Dim = 8, Depth = 2, Heads = 2, NumClasses = 4 });

    /// <summary>Reading the 16 GiB tensor would take well over this (and 16 GB of memory); the header alone takes milliseconds.</summary>
    private static readonly TimeSpan UnreadLimit = TimeSpan.FromSeconds(5);

    private const long HugeElements = 4L << 30; // F32: 16 GiB

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>The micro ViT's safetensors fixture plus an unexpected 16 GiB tensor "extra", stored sparse (the file really is 16 GiB long).</summary>
    private string WithHugeUnexpectedTensor()
    {
        var valid = File.ReadAllBytes(PickleFixtures.Path("vit_micro.safetensors"));
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(valid, 8, headerLength))!.AsObject();
        long dataLength = valid.Length - 8 - headerLength;
        header["extra"] = new JsonObject
        {
            ["dtype"] = "F32",
            ["shape"] = new JsonArray(HugeElements),
            ["data_offsets"] = new JsonArray(dataLength, dataLength + HugeElements * 4),
        };
        var path = _dir.WriteBytes("huge.safetensors", TempDirectory.SafetensorsBytes(Encoding.UTF8.GetBytes(header.ToJsonString()), valid[(8 + headerLength)..]));
        using (var file = new FileStream(path, FileMode.Open, FileAccess.Write))
            file.SetLength(file.Length + HugeElements * 4); // a hole: no disk, no I/O
        return path;
    }

    private static T Timed<T>(Func<T> load, string what)
    {
        var watch = Stopwatch.StartNew();
        var result = load();
        Assert.True(watch.Elapsed < UnreadLimit, $"{what} took {watch.Elapsed}: it read the unexpected tensor's bytes");
        return result;
    }

    [Fact]
    public void DenseLoadRefusesAHugeUnexpectedTensorFromTheHeader()
    {
        var path = WithHugeUnexpectedTensor();
        var e = Timed(() => Assert.Throws<CheckpointMismatchException>(() => DenseCheckpoint.Load(path, Micro)), "strict dense load");
        Assert.Contains("unexpected (1): extra", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void NonStrictLoadsSkipAHugeUnexpectedTensorUnread()
    {
        var path = WithHugeUnexpectedTensor();
        using (var dense = Timed(() => DenseCheckpoint.Load(path, Micro, strict: false), "non-strict dense load"))
        {
            Assert.Equal(["extra"], dense.Report.Unexpected);
            Assert.DoesNotContain("extra", dense.Tensors.Keys);
            Assert.Contains("blocks.1.mlp.fc2.weight", dense.Tensors.Keys);
        }

        using var model = ModelRegistry.Create(Micro);
        using var reader = SafetensorsReader.Open(path);
        var report = Timed(() => ModelCheckpoint.LoadWeights(reader, model, strict: false), "non-strict LoadWeights");
        Assert.Equal(["extra"], report.Unexpected);
    }

    [Theory]
    [InlineData("[274877906944]", "[0, 1099511627776]", "run past the end of the 4-byte data section")] // 1 TiB of F32
    [InlineData("[4611686018427387904, 4]", "[0, 4]", "is too large to address")]                      // dtype x shape overflows
    public void ASafetensorsHeaderClaimingTerabytesIsRefusedBeforeAnyRead(string shape, string offsets, string fragment)
    {
        var path = _dir.WriteSafetensors("claim.safetensors", $"{{\"w\":{{\"dtype\":\"F32\",\"shape\":{shape},\"data_offsets\":{offsets}}}}}", new byte[4]);
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsReader.Open(path).Dispose());
        Assert.Equal("w", e.TensorName);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void AnIntegerTensorWhereAWeightBelongsIsMisShaped()
    {
        using var model = ModelRegistry.Create(Micro);
        var tensors = model.state_dict()
            .Select(kv => kv.Key == "cls_token" ? new KeyValuePair<string, torch.Tensor>(kv.Key, torch.zeros([1, 1, 8], torch.ScalarType.Int64)) : kv)
            .ToList();
        var path = _dir.File("int.safetensors");
        SafetensorsWriter.Write(path, tensors);
        var e = Assert.Throws<CheckpointMismatchException>(() => DenseCheckpoint.Load(path, Micro));
        Assert.Contains("mis-shaped (1): cls_token: file Int64 [1, 1, 8], vit_micro Float32 [1, 1, 8]", e.Message);
        using var reader = SafetensorsReader.Open(path);
        var report = ModelCheckpoint.LoadWeights(reader, model, strict: false);
        Assert.Single(report.MisShaped);
    }

    [Fact]
    public void ATorchLoadReadsOnlyTheSelectedStorages()
    {
        // "b"'s storage entry is missing: reading it would throw, so a load that succeeds never touched it.
        var pickle = DictPickle(("a", Tensor(Storage("FloatStorage", "0", 1), 0, [1], [1])),
                                ("b", Tensor(Storage("FloatStorage", "1", 1), 0, [1], [1])));
        var path = PickleFixtures.WriteArchive(_dir.File("two.pth"), pickle, new Dictionary<string, byte[]> { ["0"] = BitConverter.GetBytes(0.5f) });

        IReadOnlyList<TensorHeader>? seen = null;
        using (var loaded = TorchCheckpoint.Load(path, headers => { seen = headers; return ["a"]; }))
        {
            Assert.Equal(["a"], loaded.StateDict.Keys);
            Assert.Equal(0.5f, loaded.StateDict["a"].item<float>());
        }
        Assert.Equal(["a: Float32 [1]", "b: Float32 [1]"], seen!.Select(h => h.ToString()));
        Assert.Equal("b", Assert.Throws<TorchCheckpointFormatException>(() => TorchCheckpoint.Load(path)).Key);
    }
}
