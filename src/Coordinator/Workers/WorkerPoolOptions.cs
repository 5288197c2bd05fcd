namespace Jetpack.Coordinator.Workers;

/// <summary>Worker liveness: a worker whose last heartbeat is older than <see cref="HeartbeatTimeout"/> is dead.</summary>
public sealed class WorkerPoolOptions
{
    /// <summary>Three and a half default heartbeat intervals: a silent worker is dead after 7–8 s (issue 20 asks ≤ 10 s).</summary>
    public static readonly TimeSpan DefaultHeartbeatTimeout = Protocol.Control.LivenessDefaults.HeartbeatTimeout;
    public TimeSpan HeartbeatTimeout { get; set; } = DefaultHeartbeatTimeout;
    /// <summary>How often the pool checks liveness (and refreshes the worker gauges).</summary>
    public TimeSpan CheckPeriod { get; set; } = TimeSpan.FromSeconds(1);
    /// <summary>How long a job waits for enough live idle workers (at scatter and at recovery) before it fails.
    /// At least a heartbeat timeout, so that after a coordinator restart the workers can re-announce themselves.</summary>
    public TimeSpan AcquireTimeout { get; set; } = TimeSpan.FromMinutes(2);

    public void Validate()
    {
        if (HeartbeatTimeout <= TimeSpan.Zero) throw new ArgumentException($"heartbeat timeout must be > 0, got {HeartbeatTimeout}");
        if (CheckPeriod <= TimeSpan.Zero || CheckPeriod > HeartbeatTimeout)
            throw new ArgumentException($"liveness check period must be in (0, heartbeat timeout {HeartbeatTimeout}], got {CheckPeriod}");
        if (AcquireTimeout < TimeSpan.Zero) throw new ArgumentException($"worker acquire timeout must be ≥ 0, got {AcquireTimeout}");
    }
}
