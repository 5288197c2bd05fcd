using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.Protocol.Codec;

/// <summary>
/// Rebuilds one tensor from the data of its chunks, copying each straight into the destination's
/// storage. Construct it only from a header that passed <see cref="TensorCodec.Validate"/>. The
/// destination is either given (a buffer the receiver reuses, same dtype and element count) or
/// allocated once here as host staging and placed on <c>device</c> when complete
/// (<see cref="TensorPlacement"/>); a stream that brings more or fewer bytes than the header said is refused.
/// </summary>
public sealed class TensorAssembler : IDisposable
{
    private readonly string what;
    private readonly long total;
    private Tensor? tensor;
    private readonly bool owned;
    private long received;
    private readonly TensorPlacement placement;
    private readonly Device device;

    /// <param name="placement">allocates the staging tensor and places the result (default: <see cref="TensorPlacement"/>)</param>
    /// <param name="device">where the finished tensor goes when no destination is given (default: the placement's device)</param>
    public TensorAssembler(TensorHeader header, ScalarType dtype, string what, Tensor? destination = null, TensorPlacement? placement = null, Device? device = null)
    {
        this.what = what;
        this.placement = placement ?? new TensorPlacement();
        this.device = device ?? this.placement.Device;
        total = header.ByteLength;
        var shape = header.Shape.ToArray();
        if (destination is not null)
        {
            if (destination.dtype != dtype || destination.numel() * destination.element_size() != total
                || destination.device_type != TorchSharp.DeviceType.CPU || !destination.is_contiguous())
                throw new ArgumentException($"{what}: the destination buffer is not a contiguous CPU {dtype} tensor of {total} bytes");
            tensor = destination;
        }
        else
        {
            tensor = this.placement.Staging(shape, dtype);
            owned = true;
        }
    }

    public long Received => received;

    public void Append(ReadOnlySpan<byte> data)
    {
        if (tensor is null) throw new ObjectDisposedException(nameof(TensorAssembler));
        if (data.Length > total - received)
            throw WireErrors.Invalid($"{what}: more data than the header's byte_length {total} (had {received}, then {data.Length} more)");
        if (data.Length == 0) return;
        data.CopyTo(tensor.bytes.Slice((int)received));
        received += data.Length;
    }

    /// <summary>
    /// The part of the destination's storage still to be filled, for a reader that receives straight
    /// into it (a raw socket): fill a prefix, then <see cref="Advance"/> by what was filled.
    /// </summary>
    public Span<byte> Remaining
    {
        get
        {
            if (tensor is null) throw new ObjectDisposedException(nameof(TensorAssembler));
            return tensor.bytes.Slice((int)received, (int)(total - received));
        }
    }

    public void Advance(int n)
    {
        if (n < 0 || n > total - received) throw new ArgumentOutOfRangeException(nameof(n), $"{what}: advance by {n} with {total - received} bytes left");
        received += n;
    }

    /// <summary>The finished tensor, on the device (the caller owns it, unless it was the given destination).</summary>
    public Tensor Complete()
    {
        if (tensor is null) throw new ObjectDisposedException(nameof(TensorAssembler));
        if (received != total)
            throw WireErrors.Invalid($"{what}: the stream ended after {received} of {total} bytes");
        var t = tensor;
        tensor = null;
        return owned ? placement.Place(t, device) : t;
    }

    public void Dispose()
    {
        if (owned) tensor?.Dispose();
        tensor = null;
    }
}
