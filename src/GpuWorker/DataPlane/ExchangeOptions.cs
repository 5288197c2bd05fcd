using Jetpack.Protocol.Channels;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>Data-plane settings of one worker.</summary>
public sealed record ExchangeOptions
{
    /// <summary>How long one exchange or all-reduce step may take before it fails naming the missing peer.</summary>
    public TimeSpan Deadline { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Elements per all-reduce bucket (16 MiB of fp32): buckets bound the extra memory of flattening.</summary>
    public long BucketElements { get; init; } = 4L << 20;

    /// <summary>How this worker sends data-plane tensors (it receives both ways whatever this says).</summary>
    public DataPlaneTransport Transport { get; init; } = DataPlaneTransport.Grpc;

    public void Validate()
    {
        if (Deadline <= TimeSpan.Zero) throw new ArgumentException($"the step deadline must be positive, got {Deadline}");
        if (BucketElements < 1) throw new ArgumentException($"bucket elements must be ≥ 1, got {BucketElements}");
    }
}
