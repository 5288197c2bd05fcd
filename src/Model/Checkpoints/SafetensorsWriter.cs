using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;
using TorchSharp;

namespace Jetpack.Model.Checkpoints;

/// <summary>
/// Writes safetensors files that the reference implementation (and <see cref="SafetensorsReader"/>)
/// reads: compact JSON header with "__metadata__" first and tensors in the order given, padded
/// with spaces so the data section starts at a multiple of 8 bytes, then the tensors back to back.
/// <para>
/// The write is atomic: bytes go to <c>path.tmp-&lt;random&gt;</c>, are flushed to disk, and the
/// temp file is renamed over <paramref name="path"/> only when complete. A failure at any point
/// leaves the old file untouched and removes the temp file.
/// </para>
/// </summary>
public static class SafetensorsWriter
{
    private const int StreamBufferBytes = 1 << 16; // batches small tensors; large ones bypass it

    public static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors,
                             IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors data is little-endian; this writer copies storage bytes as they are");

        // Everything that can be checked without touching data is checked before a file exists.
        var items = tensors.ToList();
        var entries = Plan(items);
        var header = EncodeHeader(entries, metadata);
        long dataLength = entries.Count == 0 ? 0 : entries[^1].End;

        var tempPath = $"{path}.tmp-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}";
        try
        {
            var options = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.None,
                BufferSize = StreamBufferBytes,
                // Reserves the blocks up front: a full disk fails here, before gigabytes are copied.
                PreallocationSize = sizeof(ulong) + header.Length + dataLength,
            };
            using (var stream = new FileStream(tempPath, options))
            {
                Span<byte> prefix = stackalloc byte[sizeof(ulong)];
                BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
                stream.Write(prefix);
                stream.Write(header);
                for (int i = 0; i < items.Count; i++)
                    WriteData(stream, items[i].Value, entries[i]);
                // fsync before the rename: otherwise a crash could leave the new name on empty blocks.
                stream.Flush(flushToDisk: true);
            }
            File.Move(tempPath, path, overwrite: true); // rename(2): atomic on POSIX filesystems
        }
        catch
        {
            TryDelete(tempPath);
            throw;
        }
    }

    /// <summary>Validates names and dtypes and lays the tensors out back to back, in the order given.</summary>
    private static List<SafetensorsEntry> Plan(List<KeyValuePair<string, torch.Tensor>> items)
    {
        var entries = new List<SafetensorsEntry>(items.Count);
        var names = new HashSet<string>(StringComparer.Ordinal);
        long offset = 0;
        foreach (var (name, tensor) in items)
        {
            if (string.IsNullOrEmpty(name))
                throw new ArgumentException($"tensor #{entries.Count} has an empty name", nameof(items));
            if (name == SafetensorsHeader.MetadataKey)
                throw new ArgumentException($"'{name}' is reserved for metadata and cannot name a tensor", nameof(items));
            if (!names.Add(name))
                throw new ArgumentException($"tensor name '{name}' appears more than once", nameof(items));
            if (tensor is null || tensor.IsInvalid)
                throw new ArgumentException($"tensor '{name}' is null or disposed", nameof(items));
            if (!SafetensorsDTypes.TryFromScalarType(tensor.dtype, out var dtype))
                throw new ArgumentException($"tensor '{name}' has torch type {tensor.dtype}, which safetensors cannot hold", nameof(items));

            var shape = tensor.shape;
            long bytes = checked(tensor.numel() * dtype.ElementSize());
            entries.Add(new SafetensorsEntry(name, dtype, shape, offset, offset + bytes));
            offset += bytes;
        }
        return entries;
    }

    /// <summary>The JSON header, space-padded so that 8 + its length is a multiple of 8.</summary>
    internal static byte[] EncodeHeader(IReadOnlyList<SafetensorsEntry> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps non-ASCII names readable; the output is still plain valid JSON.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(SafetensorsHeader.MetadataKey);
                foreach (var (key, value) in metadata)
                {
                    if (value is null)
                        throw new ArgumentException($"metadata value of '{key}' is null", nameof(metadata));
                    json.WriteString(key, value);
                }
                json.WriteEndObject();
            }
            foreach (var entry in entries)
            {
                json.WriteStartObject(entry.Name);
                json.WriteString("dtype", entry.DType.ToHeaderString());
                json.WriteStartArray("shape");
                foreach (var dim in entry.Shape)
                    json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(entry.Begin);
                json.WriteNumberValue(entry.End);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int padded = (buffer.WrittenCount + 7) / 8 * 8; // 8 (length prefix) + padded ≡ 0 (mod 8)
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    /// <summary>
    /// Writes one tensor's bytes. A tensor on another device or with strides costs one temporary CPU
    /// contiguous copy, disposed before the next tensor, so peak extra memory is one tensor, not the model.
    /// </summary>
    private static void WriteData(FileStream stream, torch.Tensor tensor, SafetensorsEntry entry)
    {
        using var detached = tensor.detach();
        using var onCpu = detached.cpu();        // alias when already on the CPU
        using var contiguous = onCpu.contiguous(); // alias when already contiguous
        long bytes = contiguous.numel() * contiguous.element_size();
        if (bytes != entry.ByteLength)
            throw new InvalidOperationException($"tensor '{entry.Name}' changed size while being written ({entry.ByteLength} -> {bytes} bytes)");
        TensorBytes.ForEachChunk(contiguous, (chunk, _) => stream.Write(chunk));
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: the original failure is what the caller must see.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
