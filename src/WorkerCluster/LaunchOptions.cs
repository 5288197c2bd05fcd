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
    /// <summary>How the workers send data-plane tensors (gRPC, or raw TCP for throughput).</summary>
    public Jetpack.Protocol.Channels.DataPlaneTransport DataPlane { get; init; } = Jetpack.Protocol.Channels.DataPlaneTransport.Grpc;
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
    /// <summary>Extra environment of every worker (tests: fault injection).</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    public void Validate()
    {
        if (WorldSize < 1) throw new ArgumentException($"workers must be ≥ 1, got {WorldSize}");
        if (StepDeadline <= TimeSpan.Zero || ReadyTimeout <= TimeSpan.Zero) throw new ArgumentException("deadlines must be positive");
        if (Coordinator is not null && Token is null) throw new ArgumentException("workers of a coordinator need its cluster token");
    }
}
