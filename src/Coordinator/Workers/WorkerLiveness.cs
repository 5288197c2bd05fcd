namespace Jetpack.Coordinator.Workers;

/// <summary>The liveness rule, in one place: alive while the last heartbeat is younger than the timeout.</summary>
public static class WorkerLiveness
{
    public static bool IsAlive(DateTimeOffset lastHeartbeat, DateTimeOffset now, TimeSpan timeout) => now - lastHeartbeat < timeout;
}
