using Jetpack.Protocol.Channels;
namespace Jetpack.WorkerCluster;

/// <summary>How <see cref="WorkerLauncher"/> starts a cluster of workers on loopback.</summary>
public sealed record LaunchOptions
{
    public required int WorldSize { get; init; }
    public string JobId { get; init; } = "job";
    /// <summary>Data-plane deadline of every step (a missing peer fails the step after this).</summary>
    public TimeSpan StepDeadline { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>How long to wait for every worker's readiness line and Health reply.</summary>
    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(90);
    /// <summary>torch threads per worker (0 = the machine's cores divided among the workers, at least 1).</summary>
    public int ThreadsPerWorker { get; init; }
    /// <summary>How the workers send data-plane tensors (raw TCP by default, or gRPC).</summary>
    public Jetpack.Protocol.Channels.DataPlaneTransport DataPlane { get; init; } = Jetpack.Protocol.Channels.DataPlaneTransports.Default;
    /// <summary>Bytes per gRPC data-plane message (<c>--chunk-bytes</c>; null: <see cref="Protocol.Codec.WireLimits"/>' default).</summary>
    public int? ChunkBytes { get; init; }
    /// <summary>jetpack-worker.dll (default: next to the running assembly).</summary>
    public string? WorkerDll { get; init; }
    /// <summary>Where the token file and worker logs go (default: a fresh temporary directory, deleted on dispose).</summary>
    public string? WorkDirectory { get; init; }
    /// <summary>Start workers that join this coordinator (<c>--coordinator</c>) instead of a static cluster: the coordinator
    /// hands them ranks per run. Needs <see cref="Token"/> (the coordinator's).</summary>
    public Uri? Coordinator { get; init; }
    /// <summary>The cluster token to give the workers (default: a fresh one).</summary>
    public Protocol.Security.ClusterToken? Token { get; init; }
    /// <summary>With <see cref="Coordinator"/>: worker i registers as "{prefix}{i}".</summary>
    public string WorkerIdPrefix { get; init; } = "worker-";
    /// <summary>With <see cref="Coordinator"/>: between heartbeats.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(3);
    /// <summary>
    /// Rank r runs inside Linux network namespace <c>Namespaces[r].Name</c> (<c>ip netns exec</c>, needs
    /// root) and listens on <c>Namespaces[r].Address</c>, which this process must reach (a bridge);
    /// null: every rank on 127.0.0.1 in this namespace. Static clusters only (not with <see cref="Coordinator"/>).
    /// </summary>
    public IReadOnlyList<(string Name, string Address)>? Namespaces { get; init; }
    /// <summary>Extra environment of every worker (tests: fault injection).</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    public void Validate()
    {
        if (WorldSize < 1) throw new ArgumentException($"workers must be ≥ 1, got {WorldSize}");
        if (StepDeadline <= TimeSpan.Zero || ReadyTimeout <= TimeSpan.Zero) throw new ArgumentException("deadlines must be positive");
        if (Coordinator is not null && Token is null) throw new ArgumentException("workers of a coordinator need its cluster token");
        if (Namespaces is not null && (Namespaces.Count != WorldSize || Coordinator is not null))
            throw new ArgumentException($"network namespaces: one per rank of a static cluster ({Namespaces.Count} for {WorldSize} workers{(Coordinator is null ? "" : ", with a coordinator")})");
    }
}
