using Jetpack.Model.Checkpoints.Pickle;
using static Jetpack.Model.Tests.Checkpoints.Pickle.PickleBytes;

namespace Jetpack.Model.Tests.Checkpoints.Pickle;

/// <summary>
/// Issue 12, item 1: a .pth whose pickle or zip directory claims terabytes must be refused from the
/// claims, before anything is allocated. Before the fix each of these aborted the test host
/// (torch.empty of 4 TiB, exit 134), so a regression shows as a crashed run, not a failed assert.
/// </summary>
public sealed class HugeClaimTests : IDisposable
{
    private const long FourTiB = 4L << 40;
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>LONG1 of a non-negative 64-bit value (8 bytes, little-endian two's complement).</summary>
    private static byte[] Long(long value) => Long1(BitConverter.GetBytes(value));

    private static byte[] Tuple(params byte[][] items) => Of(Op.Mark, Of(items.Cast<object>().ToArray()), Op.Tuple);

    /// <summary>{"w": _rebuild_tensor_v2(FloatStorage key "0" of storageNumel, 0, size, stride, False, OrderedDict())}.</summary>
    private static byte[] FloatTensorPickle(long storageNumel, long[] size, long[] stride)
    {
        var storage = Of(Op.Mark, Str("storage"), Global("torch", "FloatStorage"), Str("0"), Str("cpu"), Long(storageNumel), Op.Tuple, Op.BinPersId);
        var tensor = Of(Global("torch._utils", "_rebuild_tensor_v2"), Op.Mark, storage, Int(0), Tuple(size.Select(Long).ToArray()),
                        Tuple(stride.Select(Long).ToArray()), Op.NewFalse, Global("collections", "OrderedDict"), Op.EmptyTuple, Op.Reduce,
                        Op.Tuple, Op.Reduce);
        return DictPickle(("w", tensor));
    }

    private static TorchCheckpointFormatException Refused(string path)
    {
        var e = Assert.Throws<TorchCheckpointFormatException>(() => TorchCheckpoint.Load(path).Dispose());
        Assert.Equal(Path.GetFullPath(path), e.FilePath);
        return e;
    }

    [Fact]
    public void AZip64EntryClaimingFourTiBIsRefusedBeforeAllocating()
    {
        // The pickle and the zip directory agree on 4 TiB; only the file's length gives them away.
        var pickle = FloatTensorPickle(FourTiB / 4, [FourTiB / 4], [1]);
        var honest = File.ReadAllBytes(PickleFixtures.WriteArchive(_dir.File("honest.pth"), pickle, new Dictionary<string, byte[]> { ["0"] = new byte[16] }));
        var path = _dir.WriteBytes("zip64.pth", ZipSurgery.ClaimZip64Size(honest, "archive/data/0", FourTiB));

        var e = Refused(path);
        Assert.Equal("w", e.Key);
        Assert.Contains("storage '0' claims 1099511627776 x Float32 (4398046511104 bytes), more than the whole", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AZip64EntryLyingAboutItsSizeIsRefusedEvenWhenThePickleIsModest()
    {
        var pickle = FloatTensorPickle(4, [4], [1]);
        var honest = File.ReadAllBytes(PickleFixtures.WriteArchive(_dir.File("honest.pth"), pickle, new Dictionary<string, byte[]> { ["0"] = new byte[16] }));
        var path = _dir.WriteBytes("zip64.pth", ZipSurgery.ClaimZip64Size(honest, "archive/data/0", FourTiB));
        Assert.Contains("zip entry 'archive/data/0' claims 4398046511104 bytes", Refused(path).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AZeroStrideViewClaimingFourTiBIsRefusedBeforeCopyingItOut()
    {
        // One float, viewed as [2^20, 2^20] with strides 0: inside its storage, yet 4 TiB once copied.
        var pickle = FloatTensorPickle(1, [1L << 20, 1L << 20], [0, 0]);
        var path = PickleFixtures.WriteArchive(_dir.File("broadcast.pth"), pickle, new Dictionary<string, byte[]> { ["0"] = new byte[4] });
        var e = Refused(path);
        Assert.Equal("w", e.Key);
        Assert.Contains("more than the whole", e.Message, StringComparison.Ordinal);
        Assert.Contains("zero-stride", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnEmptyTensorWhoseStridesWouldOverflowIsRefused()
    {
        // [0, 2^62, 4] holds no element, but torch's stride computation (zero dims as 1) overflows.
        var pickle = FloatTensorPickle(1, [0, 1L << 62, 4], [0, 0, 0]);
        var path = PickleFixtures.WriteArchive(_dir.File("empty.pth"), pickle, new Dictionary<string, byte[]> { ["0"] = new byte[4] });
        Assert.Contains("overflow 64 bits", Refused(path).Message, StringComparison.Ordinal);
    }
}
