namespace Jetpack.Coordinator.Workers;

/// <summary>Worker liveness: a worker whose last heartbeat is older than <see cref="HeartbeatTimeout"/> is dead.</summary>
public sealed class WorkerPoolOptions
{
    public TimeSpan HeartbeatTimeout { get; set; } = TimeSpan.FromSeconds(15);
    /// <summary>How often the pool checks liveness (and refreshes the worker gauges).</summary>
    public TimeSpan CheckPeriod { get; set; } = TimeSpan.FromSeconds(2);

    public void Validate()
    {
        if (HeartbeatTimeout <= TimeSpan.Zero) throw new ArgumentException($"heartbeat timeout must be > 0, got {HeartbeatTimeout}");
        if (CheckPeriod <= TimeSpan.Zero || CheckPeriod > HeartbeatTimeout)
            throw new ArgumentException($"liveness check period must be in (0, heartbeat timeout {HeartbeatTimeout}], got {CheckPeriod}");
    }
}
