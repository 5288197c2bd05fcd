using System.Security.Cryptography;
using Google.Protobuf;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.Protocol.Codec;

/// <summary>
/// The one tensor ⇄ bytes codec of the wire (DESIGN.md, "src/Protocol"). Sending copies the storage
/// chunk by chunk into a buffer the caller reuses (ENVIRONMENT.md: a Span copy into a preallocated
/// buffer runs at ~10–12 GB/s; the <c>data&lt;T&gt;()</c> accessors are 10–20× slower and
/// <c>torch.frombuffer</c> converts values instead of reinterpreting them, so neither is used).
/// Receiving validates the header against what is expected before any tensor exists, then copies
/// each chunk straight into the destination's storage (<see cref="TensorAssembler"/>).
/// </summary>
public static class TensorCodec
{
    public static TensorHeader Header(string name, Tensor t)
    {
        var h = new TensorHeader { Name = name, Dtype = WireDTypes.ToWire(t.dtype), ByteLength = t.numel() * t.element_size() };
        h.Shape.Add(t.shape);
        return h;
    }

    /// <summary>
    /// A contiguous CPU view of <paramref name="t"/> whose bytes can be read: <paramref name="t"/>
    /// itself (detached, no copy) when it already is one, else a copy (a device→host transfer on GPU).
    /// Dispose the result.
    /// </summary>
    public static Tensor Readable(Tensor t)
    {
        var d = t.detach();
        if (d.device_type == TorchSharp.DeviceType.CPU && d.is_contiguous()) return d;
        using (d) return d.contiguous().cpu();
    }

    /// <summary>
    /// Copies bytes [<paramref name="offset"/>, offset + n) of a readable tensor's storage into
    /// <paramref name="buffer"/> (n = min(buffer length, what is left)) and returns n.
    /// </summary>
    public static int CopyChunk(Tensor readable, long offset, byte[] buffer)
    {
        long total = readable.numel() * readable.element_size();
        int n = (int)Math.Min(buffer.Length, total - offset);
        if (n <= 0) return 0;
        readable.bytes.Slice((int)offset, n).CopyTo(buffer);
        return n;
    }

    /// <summary>
    /// The chunks of a tensor as protobuf bytes that alias <paramref name="buffer"/>: each one is valid
    /// only until the next is requested (the caller sends it first), which is what lets one buffer
    /// serve every message. Zero chunks for an empty tensor.
    /// </summary>
    public static IEnumerable<ByteString> Chunks(Tensor readable, byte[] buffer)
    {
        long total = readable.numel() * readable.element_size();
        for (long offset = 0; offset < total;)
        {
            int n = CopyChunk(readable, offset, buffer);
            offset += n;
            yield return UnsafeByteOperations.UnsafeWrap(buffer.AsMemory(0, n));
        }
    }

    /// <summary>
    /// SHA-256 of a readable tensor's bytes (what <see cref="TensorHeader.Sha256"/> carries): one
    /// extra pass over the storage through <paramref name="buffer"/>, before the chunks are sent.
    /// </summary>
    public static ByteString Sha256(Tensor readable, byte[] buffer)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long total = readable.numel() * readable.element_size();
        for (long offset = 0; offset < total;)
        {
            int n = CopyChunk(readable, offset, buffer);
            hash.AppendData(buffer, 0, n);
            offset += n;
        }
        return ByteString.CopyFrom(hash.GetHashAndReset());
    }

    /// <summary>
    /// Checks a header on its own: present, at most <see cref="WireLimits.MaxDims"/> non-negative
    /// dimensions, a known dtype, a byte length equal to shape × element size, within the size limit.
    /// Throws InvalidArgument naming <paramref name="what"/>, what was expected and what came.
    /// </summary>
    public static ScalarType ValidateHeader(TensorHeader? h, WireLimits limits, string what)
    {
        if (h is null) throw WireErrors.Invalid($"{what}: the message has no tensor header");
        if (h.Shape.Count > limits.MaxDims)
            throw WireErrors.Invalid($"{what}: {h.Shape.Count} dimensions, at most {limits.MaxDims} allowed");
        var dtype = WireDTypes.ToTorch(h.Dtype) ?? throw WireErrors.Invalid($"{what}: dtype {h.Dtype} is not a tensor element type");
        long elements = 1;
        foreach (var d in h.Shape)
        {
            if (d < 0) throw WireErrors.Invalid($"{what}: shape {WireErrors.Shape(h.Shape)} has a negative dimension");
            // overflow-safe: anything past the limit is refused below anyway
            elements = d != 0 && elements > limits.MaxTensorBytes / d ? limits.MaxTensorBytes + 1 : elements * d;
        }
        long bytes = elements > limits.MaxTensorBytes ? long.MaxValue : elements * WireDTypes.ElementSize(h.Dtype);
        if (bytes > limits.MaxTensorBytes)
            throw WireErrors.Invalid($"{what}: shape {WireErrors.Shape(h.Shape)} of {h.Dtype} exceeds the limit of {limits.MaxTensorBytes} bytes");
        if (h.ByteLength != bytes)
            throw WireErrors.Invalid($"{what}: byte_length {h.ByteLength}, expected {bytes} for shape {WireErrors.Shape(h.Shape)} of {h.Dtype}");
        return dtype;
    }

    /// <summary><see cref="ValidateHeader"/> plus: the dtype and shape are exactly the expected ones.</summary>
    public static void Validate(TensorHeader? h, ScalarType expectedDtype, IReadOnlyList<long> expectedShape, WireLimits limits, string what)
    {
        var dtype = ValidateHeader(h, limits, what);
        if (dtype != expectedDtype)
            throw WireErrors.Invalid($"{what}: dtype {h!.Dtype}, expected {WireDTypes.ToWire(expectedDtype)}");
        if (!h!.Shape.SequenceEqual(expectedShape))
            throw WireErrors.Invalid($"{what}: shape {WireErrors.Shape(h.Shape)}, expected {WireErrors.Shape(expectedShape)}");
    }
}
