using TorchSharp;

namespace Jetpack.Model.Checkpoints;

/// <summary>Receives one chunk of a tensor's storage and the chunk's byte offset within the tensor.</summary>
internal delegate void ByteChunkAction(Span<byte> chunk, long byteOffset);

/// <summary>
/// Byte-level access to a contiguous CPU tensor's storage without going through managed arrays.
/// <c>tensor.bytes</c> is a Span over the native storage, but a Span's length is an int: tensors
/// beyond 2 GiB are visited as 1 GiB slices of a flat view instead.
/// </summary>
internal static class TensorBytes
{
    /// <summary>Chunk size for tensors too large for one Span (a multiple of every element size).</summary>
    internal const long ChunkBytes = 1L << 30;

    /// <summary>Calls <paramref name="action"/> on the tensor's storage in order, in as few chunks as possible.</summary>
    public static void ForEachChunk(torch.Tensor tensor, ByteChunkAction action)
    {
        if (tensor.device_type != DeviceType.CPU || !tensor.is_contiguous())
            throw new ArgumentException("byte access needs a contiguous CPU tensor", nameof(tensor));
        long elementSize = tensor.element_size();
        long totalBytes = tensor.numel() * elementSize;
        if (totalBytes == 0)
            return; // the storage of an empty tensor may have no address at all
        if (totalBytes <= int.MaxValue)
        {
            action(tensor.bytes, 0);
            return;
        }
        using var flat = tensor.view(-1); // an alias of the same storage: no copy
        long chunkElements = ChunkBytes / elementSize;
        for (long first = 0; first < flat.shape[0]; first += chunkElements)
        {
            using var slice = flat.narrow(0, first, Math.Min(chunkElements, flat.shape[0] - first));
            action(slice.bytes, first * elementSize);
        }
    }
}
