namespace Jetpack.Coordinator.Training;

/// <summary>
/// A worker of a run is gone (its process does not answer, or another process answers at its
/// endpoint): the job recovers on the remaining workers rather than failing. Thrown by the
/// training driver; the JobGrain reports it to the pool.
/// </summary>
public sealed class WorkerLostException(string workerId, string message) : Exception(message)
{
    public string WorkerId { get; } = workerId;
}
