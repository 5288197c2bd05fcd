using TorchSharp;

namespace Jetpack.Model.Checkpoints;

/// <summary>Receives one chunk of a tensor's storage and the chunk's byte offset within the tensor.</summary>
internal delegate void ByteChunkAction(Span<byte> chunk, long byteOffset);

/// <summary>
/// Byte-level access to a contiguous CPU tensor's storage without going through managed arrays.
/// <c>tensor.bytes</c> is a Span over the native storage, but a Span's length is an int (TorchSharp
/// throws beyond 2 GiB): larger tensors are visited as 1 GiB slices of a flat view instead.
/// </summary>
internal static class TensorBytes
{
    /// <summary>Largest chunk handed out: well under a Span's 2 GiB limit and a multiple of every element size.</summary>
    internal const long MaxChunkBytes = 1L << 30;

    /// <summary>
    /// Calls <paramref name="action"/> on the tensor's storage in order: one span if it fits in
    /// <paramref name="maxChunkBytes"/>, else consecutive slices of at most that many bytes.
    /// The spans are views of the storage, not copies. (Tests pass a small maxChunkBytes to
    /// exercise the slicing without allocating gigabytes.)
    /// </summary>
    public static void ForEachChunk(torch.Tensor tensor, ByteChunkAction action, long maxChunkBytes = MaxChunkBytes)
    {
        if (tensor.device_type != DeviceType.CPU || !tensor.is_contiguous())
            throw new ArgumentException("byte access needs a contiguous CPU tensor", nameof(tensor));
        long elementSize = tensor.element_size();
        long totalBytes = tensor.numel() * elementSize;
        if (totalBytes == 0)
            return; // the storage of an empty tensor may have no address at all
        if (totalBytes <= maxChunkBytes)
        {
            action(tensor.bytes, 0);
            return;
        }
        long chunkElements = Math.Max(1, maxChunkBytes / elementSize);
        using var flat = tensor.view(-1); // an alias of the same storage: no copy
        long count = flat.shape[0];
        for (long first = 0; first < count; first += chunkElements)
        {
            using var slice = flat.narrow(0, first, Math.Min(chunkElements, count - first));
            action(slice.bytes, first * elementSize);
        }
    }
}
