using Orleans.Concurrency;

namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>
/// One worker (key: worker id): its registration (endpoint, capacity), last heartbeat and
/// assignment (DESIGN.md "Coordinator grains"). Heartbeats are forwarded to the pool, which decides liveness.
/// </summary>
public interface IWorkerGrain : IGrainWithStringKey
{
    /// <summary>Stores the registration and joins the pool (also bringing back a worker counted dead).</summary>
    Task Register(WorkerRegistration registration);
    /// <summary>Records a heartbeat and returns the current assignment, unless the pool counted the worker dead
    /// (then the outcome says why, and only a registration brings it back).</summary>
    /// <exception cref="UnknownWorkerException">the worker never registered.</exception>
    Task<HeartbeatOutcome> Heartbeat();
    Task<WorkerMember?> GetInfo();
    /// <summary>From the pool (one-way, so pool and worker never wait on each other).</summary>
    [OneWay] Task Assign(WorkerAssignment? assignment);
}
