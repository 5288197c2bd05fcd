namespace Jetpack.Protocol.Codec;

/// <summary>
/// Size limits of the wire (DESIGN.md, "Trust boundaries"): a tensor larger than
/// <see cref="MaxTensorBytes"/> or of more than <see cref="MaxDims"/> dimensions is refused from its
/// header alone; data travels in frames of at most <see cref="ChunkBytes"/>, so gRPC's per-message
/// limit (<see cref="MaxFrameBytes"/>) stays bounded whatever the tensor size. Larger chunks
/// (jetpack-worker <c>--chunk-bytes</c>) cut grpc-dotnet's per-message costs; `jetpack bench exchange
/// --grpc-chunk-kib 64,1024,4096` measured no gain from them (docs/measured/data-plane/).
/// </summary>
public sealed record WireLimits
{
    public long MaxTensorBytes { get; init; } = 512L << 20;
    public int ChunkBytes { get; init; } = 64 << 10;
    public int MaxDims { get; init; } = 8;

    /// <summary>gRPC's maximum message size: one chunk plus room for the header.</summary>
    public int MaxFrameBytes => ChunkBytes + (64 << 10);

    public static WireLimits Default { get; } = new();

    public void Validate()
    {
        if (ChunkBytes < 1024 || ChunkBytes > (64 << 20)) throw new ArgumentException($"chunk bytes must be in [1 KiB, 64 MiB], got {ChunkBytes}");
        if (MaxTensorBytes < 1 || MaxTensorBytes > int.MaxValue) throw new ArgumentException($"max tensor bytes must be in [1, 2 GiB), got {MaxTensorBytes}");
        if (MaxDims < 1) throw new ArgumentException($"max dims must be ≥ 1, got {MaxDims}");
    }
}
