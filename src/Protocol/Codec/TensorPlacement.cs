using static TorchSharp.torch;

namespace Jetpack.Protocol.Codec;

/// <summary>
/// Where the data plane puts the tensors it makes (issue 20, device discipline). Bytes come off a
/// socket into host memory, so a receive lands in a host staging tensor (<see cref="Staging"/>); what
/// is handed to the trainer is placed on the rank's configured <see cref="Device"/> (<see cref="Place"/>:
/// no copy on the CPU, one host→device copy on a GPU). The ring all-reduce stages its buckets on the
/// host the same way and writes the sums back into the caller's tensors on their device. This is the
/// one seam for those allocations, so a test can record the device each one asked for.
/// </summary>
public class TensorPlacement
{
    private Device device = CPU;

    /// <summary>The rank's configured device (the job's <c>device</c>; set before its first step).</summary>
    public Device Device
    {
        get => Volatile.Read(ref device);
        set => Volatile.Write(ref device, value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>A host tensor that socket bytes are received into, or that a bucket is packed into for sending.</summary>
    public virtual Tensor Staging(long[] shape, ScalarType dtype) => empty(shape, dtype, device: CPU);

    /// <summary>
    /// The tensor the caller gets for a filled staging tensor, on <paramref name="target"/>: the staging
    /// tensor itself on the CPU, else a copy on the device (the staging tensor is then disposed).
    /// </summary>
    public virtual Tensor Place(Tensor staging, Device target)
    {
        if (target.type == TorchSharp.DeviceType.CPU) return staging;
        using (staging) return staging.to(target);
    }
}
