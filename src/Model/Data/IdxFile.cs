using System.Buffers.Binary;
using System.IO.Compression;

namespace Jetpack.Model.Data;

/// <summary>
/// Reads an unsigned-byte IDX file (the MNIST format, http://yann.lecun.com/exdb/mnist/): a
/// big-endian magic 0x0000_08_nd (type 0x08 = ubyte, nd dimensions), nd big-endian int32 sizes,
/// then the bytes in row-major order. Gzip-compressed files (.gz, recognised by their 1f 8b
/// magic, not their name) are inflated on the fly. Every error is an
/// <see cref="InvalidDataException"/> naming the file.
/// </summary>
public static class IdxFile
{
    /// <summary>Magic of an image file: ubyte, 3 dimensions (count, rows, columns).</summary>
    public const int ImagesMagic = 2051;

    /// <summary>Magic of a label file: ubyte, 1 dimension (count).</summary>
    public const int LabelsMagic = 2049;

    /// <summary>Reads <paramref name="path"/>, which must carry <paramref name="expectedMagic"/>; returns its sizes and data.</summary>
    public static (int[] Dims, byte[] Data) Read(string path, int expectedMagic)
    {
        using var file = File.OpenRead(path);
        bool gzip = file.Length >= 2 && file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
        file.Position = 0;
        using var stream = gzip ? new GZipStream(file, CompressionMode.Decompress) : (Stream)file;
        return ReadFrom(stream, path, expectedMagic);
    }

    private static (int[] Dims, byte[] Data) ReadFrom(Stream stream, string path, int expectedMagic)
    {
        var word = new byte[4];
        if (ReadFully(stream, word, path) < 4)
            throw new InvalidDataException($"{path}: shorter than the 4-byte IDX magic");
        int magic = BinaryPrimitives.ReadInt32BigEndian(word);
        if (magic != expectedMagic)
            throw new InvalidDataException(
                $"{path}: IDX magic {magic} (0x{magic:x8}), expected {expectedMagic} (0x{expectedMagic:x8}: " +
                $"unsigned bytes, {expectedMagic & 0xff} dimension(s))");

        var dims = new int[expectedMagic & 0xff];
        long size = 1;
        for (int d = 0; d < dims.Length; d++)
        {
            if (ReadFully(stream, word, path) < 4)
                throw new InvalidDataException($"{path}: header ends before dimension {d} of {dims.Length}");
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(word);
            if (dims[d] < 0)
                throw new InvalidDataException($"{path}: dimension {d} is negative ({dims[d]})");
            size *= dims[d];
        }
        if (size > Array.MaxLength)
            throw new InvalidDataException($"{path}: [{string.Join(", ", dims)}] is {size} bytes, more than an array holds");

        var data = new byte[size];
        int read = ReadFully(stream, data, path);
        if (read < size)
            throw new InvalidDataException($"{path}: truncated: [{string.Join(", ", dims)}] needs {size} data bytes, found {read}");
        if (ReadFully(stream, word.AsSpan(0, 1), path) > 0)
            throw new InvalidDataException($"{path}: trailing bytes after the {size} data bytes of [{string.Join(", ", dims)}]");
        return (dims, data);
    }

    private static int ReadFully(Stream stream, Span<byte> buffer, string path)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n;
            try
            {
                n = stream.Read(buffer[total..]);
            }
            catch (InvalidDataException e)
            {
                // GZipStream's own complaint (bad deflate block, bad CRC) does not say which file.
                throw new InvalidDataException($"{path}: corrupt gzip data ({e.Message})", e);
            }
            if (n == 0) break;
            total += n;
        }
        return total;
    }
}
