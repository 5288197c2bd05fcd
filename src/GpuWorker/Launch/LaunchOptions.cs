namespace Jetpack.GpuWorker.Launch;

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
    /// <summary>jetpack-worker.dll (default: next to the running assembly).</summary>
    public string? WorkerDll { get; init; }
    /// <summary>Where the token file and worker logs go (default: a fresh temporary directory, deleted on dispose).</summary>
    public string? WorkDirectory { get; init; }

    public void Validate()
    {
        if (WorldSize < 1) throw new ArgumentException($"workers must be ≥ 1, got {WorldSize}");
        if (StepDeadline <= TimeSpan.Zero || ReadyTimeout <= TimeSpan.Zero) throw new ArgumentException("deadlines must be positive");
    }
}
