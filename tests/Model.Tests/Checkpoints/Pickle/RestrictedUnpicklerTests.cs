using Jetpack.Model.Checkpoints.Pickle;
using static Jetpack.Model.Tests.Checkpoints.Pickle.PickleBytes;

namespace Jetpack.Model.Tests.Checkpoints.Pickle;

/// <summary>The interpreter on hand-assembled streams: each supported opcode's meaning, and each kind of damage's message.</summary>
public sealed class RestrictedUnpicklerTests
{
    private const string FilePath = "/checkpoints/test.pth";

    private static object? Load(params object[] parts) => RestrictedUnpickler.Load(Of(parts), FilePath);

    private static string Refused(params object[] parts)
    {
        var e = Assert.Throws<TorchCheckpointFormatException>(() => Load(parts));
        Assert.Contains(FilePath, e.Message, StringComparison.Ordinal);
        return e.Message;
    }

    [Fact]
    public void ScalarsDecode()
    {
        var list = Assert.IsType<List<object?>>(Load(Proto(2), Op.EmptyList, Op.Mark,
            Int(7), Int(-5), Int(70000), Raw((byte)'M', 0x34, 0x12), Long1(), Long1(0xff), Long1(0x00, 0x80), Long1(0x00, 0x80, 0x00),
            Long1(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), Float(-2.5), Op.None, Op.NewTrue, Op.NewFalse,
            Str("é"), Raw((byte)0x8c, 1, (byte)'a'), Raw((byte)'U', 1, (byte)'b'), Raw((byte)'T', 1, 0, 0, 0, (byte)'c'),
            Raw((byte)0x8d, 1, 0, 0, 0, 0, 0, 0, 0, (byte)'d'), Op.Appends, Op.Stop));
        Assert.Equal<object?>([7L, -5L, 70000L, 0x1234L, 0L, -1L, -32768L, 32768L, long.MaxValue, -2.5, null, true, false, "é", "a", "b", "c", "d"], list);
    }

    [Fact]
    public void ContainersAndMemoBuildSharedStructure()
    {
        // {'t': (1, 2, 3), 'l': [x, x], 'd': {'k': 'v'}} where x is the memoized tuple (1,).
        var result = Assert.IsType<PickleDict>(Load(Proto(4), Op.EmptyDict, Op.Memoize,
            Str("t"), Int(1), Int(2), Int(3), Op.Tuple3, Op.SetItem,
            Str("l"), Op.Mark, Int(1), Op.Tuple1, BinPut(9), BinGet(9), Op.List, Op.SetItem,
            Str("d"), Op.Mark, Str("k"), Str("v"), Op.Dict, Op.SetItem,
            Str("e"), Op.EmptyTuple, Op.SetItem, Op.Stop));
        Assert.Equal(["t", "l", "d", "e"], result.Items.Keys);
        Assert.Equal([1L, 2L, 3L], Assert.IsType<PickleTuple>(result.Items["t"]).Items);
        var list = Assert.IsType<List<object?>>(result.Items["l"]);
        Assert.Same(list[0], list[1]);
        Assert.Equal("v", Assert.IsType<PickleDict>(result.Items["d"]).Items["k"]);
        Assert.Equal(0, Assert.IsType<PickleTuple>(result.Items["e"]).Count);
    }

    [Fact]
    public void OverwritingAKeyKeepsItsPosition()
    {
        var result = Assert.IsType<PickleDict>(Load(DictPickle(("a", Int(1)), ("b", Int(2)), ("a", Int(3)))));
        Assert.Equal(["a", "b"], result.Items.Keys);
        Assert.Equal(3L, result.Items["a"]);
    }

    [Fact]
    public void TensorDescriptionsKeepViewGeometry()
    {
        var result = Assert.IsType<PickleDict>(Load(DictPickle(
            ("a", Tensor(Storage("FloatStorage", "0", 12), 0, [3, 4], [4, 1])),
            ("col", Tensor(Storage("FloatStorage", "0", 12), 2, [3], [4])))));
        var a = Assert.IsType<PickledTensor>(result.Items["a"]);
        var col = Assert.IsType<PickledTensor>(result.Items["col"]);
        Assert.Same(a.Storage, col.Storage);
        Assert.Equal(2L, col.Offset);
        Assert.Equal([3L], col.Size);
        Assert.Equal([4L], col.Stride);
    }

    [Fact]
    public void UnknownOpcodeNamesTheByteAndOffset()
    {
        var message = Refused(Proto(2), Op.EmptyDict, (byte)0xfe, Op.Stop);
        Assert.Contains("byte 3 (opcode 0xfe", message, StringComparison.Ordinal);
        Assert.Contains("unsupported opcode", message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData((byte)'i')] // INST: instantiates any class by name
    [InlineData((byte)'o')] // OBJ
    [InlineData((byte)'P')] // PERSID (text)
    [InlineData((byte)0x82)] // EXT1: the extension registry
    [InlineData((byte)'B')] // BINBYTES
    public void ExecutingOrUnneededOpcodesAreRefused(byte opcode) =>
        Assert.Contains("unsupported opcode", Refused(Proto(2), opcode, Op.Stop), StringComparison.Ordinal);

    [Theory]
    [InlineData(1)]
    [InlineData(6)]
    public void ProtocolOutsideTwoToFiveIsRefused(byte version) =>
        Assert.Contains($"pickle protocol {version}", Refused(Proto(version), Op.None, Op.Stop), StringComparison.Ordinal);

    [Fact]
    public void StructuralDamageIsNamed()
    {
        Assert.Contains("stack underflow", Refused(Proto(2), Op.Stop), StringComparison.Ordinal);
        Assert.Contains("stack underflow", Refused(Proto(2), Op.Tuple2, Op.Stop), StringComparison.Ordinal);
        Assert.Contains("pops past a MARK", Refused(Proto(2), Int(1), Op.Mark, Op.Tuple1, Op.Stop), StringComparison.Ordinal);
        Assert.Contains("no MARK is open", Refused(Proto(2), Op.Tuple, Op.Stop), StringComparison.Ordinal);
        Assert.Contains("memo has no entry 4", Refused(Proto(2), BinGet(4), Op.Stop), StringComparison.Ordinal);
        Assert.Contains("without a STOP", Refused(Proto(2), Op.None), StringComparison.Ordinal);
        Assert.Contains("leaves 1 values", Refused(Proto(2), Op.None, Op.None, Op.Stop), StringComparison.Ordinal);
        Assert.Contains("follow the STOP", Refused(Proto(2), Op.None, Op.Stop, Op.None), StringComparison.Ordinal);
        Assert.Contains("do not pair up", Refused(Proto(2), Op.EmptyDict, Op.Mark, Str("k"), Op.SetItems, Op.Stop), StringComparison.Ordinal);
        Assert.Contains("not a dict", Refused(Proto(2), Op.EmptyList, Str("k"), Str("v"), Op.SetItem, Op.Stop), StringComparison.Ordinal);
        Assert.Contains("only str and int keys", Refused(Proto(2), Op.EmptyDict, Op.EmptyList, Int(1), Op.SetItem, Op.Stop), StringComparison.Ordinal);
    }

    [Fact]
    public void LyingLengthsFailBeforeAllocating()
    {
        // A 4 GiB string and a 2^63-byte string in a 12-byte stream: truncation, not OutOfMemory.
        Assert.Contains("truncated", Refused(Proto(2), Raw((byte)'X', 0xff, 0xff, 0xff, 0xff), Op.Stop), StringComparison.Ordinal);
        Assert.Contains("truncated", Refused(Proto(4), Raw((byte)0x8d, 0, 0, 0, 0, 0, 0, 0, 0x80), Op.Stop), StringComparison.Ordinal);
        Assert.Contains("negative string length", Refused(Proto(2), Raw((byte)'T', 0xff, 0xff, 0xff, 0xff), Op.Stop), StringComparison.Ordinal);
        Assert.Contains("runs past the end", Refused(Proto(4), Raw((byte)0x95, 0xff, 0, 0, 0, 0, 0, 0, 0), Op.None, Op.Stop), StringComparison.Ordinal);
        Assert.Contains("exceeds the 64 bits", Refused(Proto(2), Long1(new byte[9]), Op.Stop), StringComparison.Ordinal);
        Assert.Contains("not valid UTF-8", Refused(Proto(2), Raw((byte)'X', 1, 0, 0, 0, 0xff), Op.Stop), StringComparison.Ordinal);
        Assert.Contains("longer than 256", Refused(Proto(2), (byte)'c', new byte[300], Op.Stop), StringComparison.Ordinal);
    }

    [Fact]
    public void TensorsOutsideTheirStorageAreRefused()
    {
        string Bad(int numel, int offset, int[] size, int[] stride) =>
            Refused(DictPickle(("w", Tensor(Storage("FloatStorage", "0", numel), offset, size, stride))));

        Assert.Contains("reaches element 12 of storage '0', which has 12", Bad(12, 1, [3, 4], [4, 1]), StringComparison.Ordinal);
        Assert.Contains("reaches element 4", Bad(4, 0, [2, 2], [1, 3]), StringComparison.Ordinal);
        Assert.Contains("size[0] is int -1", Bad(4, 0, [-1], [1]), StringComparison.Ordinal);
        Assert.Contains("stride[0] is int -1", Bad(4, 0, [2], [-1]), StringComparison.Ordinal);
        Assert.Contains("storage offset is int -1", Bad(4, -1, [2], [1]), StringComparison.Ordinal);
        Assert.Contains("1 sizes but 2 strides", Bad(4, 0, [2], [1, 1]), StringComparison.Ordinal);
        Assert.Contains("overflow 64 bits", Bad(4, 0, [int.MaxValue, int.MaxValue, int.MaxValue], [1, 1, 1]), StringComparison.Ordinal);
        // An empty view may point anywhere: it reads nothing.
        Assert.IsType<PickleDict>(Load(DictPickle(("w", Tensor(Storage("FloatStorage", "0", 0), 5, [0, 3], [3, 1])))));
    }

    [Fact]
    public void OneStorageKeyCannotMeanTwoStorages() =>
        Assert.Contains("appears as 4 x Float32 and as 4 x Int32", Refused(DictPickle(
            ("a", Tensor(Storage("FloatStorage", "0", 4), 0, [4], [1])),
            ("b", Tensor(Storage("IntStorage", "0", 4), 0, [4], [1])))), StringComparison.Ordinal);

    [Theory]
    [InlineData("../0")]
    [InlineData("")]
    public void StorageKeysArePlainNames(string key) =>
        Assert.Contains("not a plain name", Refused(DictPickle(("w", Tensor(Storage("FloatStorage", key, 1), 0, [1], [1])))), StringComparison.Ordinal);

    [Fact]
    public void SelfContainingListsAreDescribedWithoutRecursing()
    {
        // l = []; l.append(l): a cycle must not hang the error path that describes it.
        var message = Refused(Proto(2), Op.EmptyList, BinPut(0), BinGet(0), Op.Append, Op.EmptyTuple, Op.Reduce, Op.Stop);
        Assert.Contains("REDUCE calls a list", message, StringComparison.Ordinal);
    }
}
