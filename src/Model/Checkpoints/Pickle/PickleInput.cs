using System.Buffers.Binary;
using System.Text;

namespace Jetpack.Model.Checkpoints.Pickle;

/// <summary>
/// A bounds-checked cursor over a pickle stream. Every read checks the bytes are there before
/// touching them, so a truncated or lying length fails here with the offset and opcode of the
/// damage, never with an IndexOutOfRangeException or an attempt to allocate the lying length.
/// </summary>
internal sealed class PickleInput(ReadOnlyMemory<byte> data, string filePath)
{
    /// <summary>GLOBAL's text lines: real module and class names are short; a missing newline should not scan megabytes.</summary>
    private const int MaxLineLength = 256;

    // Strict UTF-8: invalid bytes are an error, not U+FFFD, so a damaged key cannot silently change.
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public string FilePath { get; } = filePath;

    public long Position { get; private set; }

    public long Length => data.Length;

    public bool AtEnd => Position >= data.Length;

    /// <summary>Offset of the opcode being executed, for messages.</summary>
    public long OpcodeOffset { get; private set; }

    /// <summary>The opcode being executed, for messages.</summary>
    public byte Opcode { get; private set; }

    public byte NextOpcode()
    {
        OpcodeOffset = Position;
        Opcode = ReadByte();
        return Opcode;
    }

    public byte ReadByte() => Take(1)[0];

    public ushort ReadUInt16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));

    public int ReadInt32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));

    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    public ulong ReadUInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    public double ReadDoubleBigEndian() => BinaryPrimitives.ReadDoubleBigEndian(Take(8));

    /// <summary>A little-endian two's-complement integer of <paramref name="length"/> bytes (LONG1); Python ints beyond 64 bits are refused.</summary>
    public long ReadSignedLittleEndian(int length)
    {
        if (length > 8)
            throw Fail($"an integer of {length} bytes exceeds the 64 bits any tensor size, offset or count needs");
        var bytes = Take(length);
        if (length == 0)
            return 0; // Python's LONG1 encodes 0 as no bytes
        long value = (sbyte)bytes[length - 1]; // the top byte carries the sign
        for (int i = length - 2; i >= 0; i--)
            value = (value << 8) | bytes[i];
        return value;
    }

    /// <summary>UTF-8 text of a declared length; the length is checked against the stream before any allocation.</summary>
    public string ReadUtf8(ulong length)
    {
        var bytes = Take(length);
        try
        {
            return Utf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw Fail("a string is not valid UTF-8", e);
        }
    }

    /// <summary>A newline-terminated line (GLOBAL's module and name), without the newline.</summary>
    public string ReadLine()
    {
        var rest = data.Span[(int)Position..];
        int newline = rest[..Math.Min(rest.Length, MaxLineLength + 1)].IndexOf((byte)'\n');
        if (newline < 0)
            throw rest.Length <= MaxLineLength
                ? Fail("the stream ends inside a GLOBAL name (no newline)")
                : Fail($"a GLOBAL name is longer than {MaxLineLength} bytes");
        var text = ReadUtf8((ulong)newline);
        Position++; // the newline
        return text;
    }

    /// <summary>Skips nothing, but checks a FRAME's declared length fits in what is left.</summary>
    public void CheckFrame(ulong frameLength)
    {
        if (frameLength > (ulong)(data.Length - Position))
            throw Fail($"a FRAME of {frameLength} bytes runs past the end of the {data.Length}-byte stream");
    }

    public TorchCheckpointFormatException Fail(string problem, Exception? inner = null)
    {
        char printable = Opcode is >= 0x20 and < 0x7f ? (char)Opcode : '?';
        var name = Enum.IsDefined((PickleOpcode)Opcode) ? ((PickleOpcode)Opcode).ToString().ToUpperInvariant() : $"'{printable}'";
        return new TorchCheckpointFormatException(FilePath, null, $"data.pkl byte {OpcodeOffset} (opcode 0x{Opcode:x2} {name}): {problem}", inner);
    }

    private ReadOnlySpan<byte> Take(ulong count)
    {
        ulong left = (ulong)(data.Length - Position);
        if (count > left)
            throw Fail($"the stream is truncated: {count} bytes needed at byte {Position}, {left} left");
        var span = data.Span.Slice((int)Position, (int)count);
        Position += (long)count;
        return span;
    }

    private ReadOnlySpan<byte> Take(int count) => Take((ulong)count);
}
