using Orleans.Concurrency;

namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>
/// One worker (key: worker id): its registration (endpoint, capacity), last heartbeat and
/// assignment (DESIGN.md "Coordinator grains"). Heartbeats are forwarded to the pool one-way.
/// </summary>
public interface IWorkerGrain : IGrainWithStringKey
{
    Task Register(WorkerRegistration registration);
    /// <summary>Records a heartbeat; returns the current assignment (null: idle).</summary>
    /// <exception cref="UnknownWorkerException">the worker never registered.</exception>
    Task<WorkerAssignment?> Heartbeat();
    Task<WorkerMember?> GetInfo();
    /// <summary>From the pool (one-way, so pool and worker never wait on each other).</summary>
    [OneWay] Task Assign(WorkerAssignment? assignment);
}
