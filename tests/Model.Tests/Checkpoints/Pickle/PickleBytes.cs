using System.Buffers.Binary;
using System.Text;

namespace Jetpack.Model.Tests.Checkpoints.Pickle;

/// <summary>
/// Hand assembly of pickle opcodes for tests, so each test's stream is explicit about its bytes.
/// Opcode values are those of the pickle format (CPython's pickletools lists them).
/// </summary>
public static class PickleBytes
{
    public static byte[] Of(params object[] parts)
    {
        var bytes = new List<byte>();
        foreach (var part in parts)
        {
            switch (part)
            {
                case byte b: bytes.Add(b); break;
                case char c: bytes.Add((byte)c); break;
                case byte[] a: bytes.AddRange(a); break;
                default: throw new ArgumentException($"not a pickle part: {part}");
            }
        }
        return [.. bytes];
    }

    /// <summary>Single-byte opcodes by their pickletools names.</summary>
    public static class Op
    {
        public const byte Stop = (byte)'.', Mark = (byte)'(', EmptyDict = (byte)'}', EmptyList = (byte)']', EmptyTuple = (byte)')';
        public const byte SetItem = (byte)'s', SetItems = (byte)'u', Append = (byte)'a', Appends = (byte)'e', Tuple = (byte)'t';
        public const byte Tuple1 = 0x85, Tuple2 = 0x86, Tuple3 = 0x87, Reduce = (byte)'R', Build = (byte)'b', NewObj = 0x81;
        public const byte BinPersId = (byte)'Q', None = (byte)'N', NewTrue = 0x88, NewFalse = 0x89, StackGlobal = 0x93, Memoize = 0x94;
        public const byte List = (byte)'l', Dict = (byte)'d';
    }

    /// <summary>Literal bytes, for opcodes and arguments a test spells out.</summary>
    public static byte[] Raw(params byte[] bytes) => bytes;

    public static byte[] Proto(byte version) => [0x80, version];

    /// <summary>BINUNICODE: 'X', u32 LE length, UTF-8.</summary>
    public static byte[] Str(string text)
    {
        var utf8 = Encoding.UTF8.GetBytes(text);
        var bytes = new byte[5 + utf8.Length];
        bytes[0] = (byte)'X';
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(1), (uint)utf8.Length);
        utf8.CopyTo(bytes, 5);
        return bytes;
    }

    /// <summary>BININT1 for 0–255, else BININT.</summary>
    public static byte[] Int(int value)
    {
        if (value is >= 0 and < 256)
            return [(byte)'K', (byte)value];
        var bytes = new byte[5];
        bytes[0] = (byte)'J';
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(1), value);
        return bytes;
    }

    /// <summary>LONG1: length byte then little-endian two's complement.</summary>
    public static byte[] Long1(params byte[] littleEndian) => [0x8a, (byte)littleEndian.Length, .. littleEndian];

    public static byte[] Float(double value)
    {
        var bytes = new byte[9];
        bytes[0] = (byte)'G';
        BinaryPrimitives.WriteDoubleBigEndian(bytes.AsSpan(1), value);
        return bytes;
    }

    /// <summary>GLOBAL: 'c', "module\n", "name\n".</summary>
    public static byte[] Global(string module, string name) => Of('c', Encoding.UTF8.GetBytes($"{module}\n{name}\n"));

    public static byte[] BinPut(byte index) => [(byte)'q', index];

    public static byte[] BinGet(byte index) => [(byte)'h', index];

    /// <summary>A tuple of small ints (a size or stride).</summary>
    public static byte[] Ints(params int[] values) => Of(Op.Mark, Of(values.Select(v => (object)Int(v)).ToArray()), Op.Tuple);

    /// <summary>torch's persistent id for a storage: ('storage', torch.&lt;type&gt;, key, 'cpu', numel), then BINPERSID.</summary>
    public static byte[] Storage(string storageType, string key, int numel) =>
        Of(Op.Mark, Str("storage"), Global("torch", storageType), Str(key), Str("cpu"), Int(numel), Op.Tuple, Op.BinPersId);

    /// <summary>_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()).</summary>
    public static byte[] Tensor(byte[] storage, int offset, int[] size, int[] stride) =>
        Of(Global("torch._utils", "_rebuild_tensor_v2"), Op.Mark, storage, Int(offset), Ints(size), Ints(stride), Op.NewFalse,
           Global("collections", "OrderedDict"), Op.EmptyTuple, Op.Reduce, Op.Tuple, Op.Reduce);

    /// <summary>A whole protocol-2 pickle of {key: value, ...}.</summary>
    public static byte[] DictPickle(params (string Key, byte[] Value)[] items) =>
        Of(Proto(2), Op.EmptyDict, Op.Mark, Of(items.Select(i => (object)Of(Str(i.Key), i.Value)).ToArray()), Op.SetItems, Op.Stop);
}
