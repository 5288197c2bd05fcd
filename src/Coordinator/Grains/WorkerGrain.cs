using Jetpack.Coordinator.Grains.Contracts;

namespace Jetpack.Coordinator.Grains;

/// <summary>
/// One worker's registration, heartbeat and assignment. Every heartbeat is forwarded to the pool
/// together with the registration, so the pool's soft membership rebuilds itself after a
/// coordinator restart from heartbeats alone; the pool refuses a heartbeat of a worker it counted
/// dead (<see cref="HeartbeatOutcome.CountedDead"/>), which must then register again.
/// </summary>
public sealed class WorkerGrain([PersistentState("worker", StorageNames.Jobs)] IPersistentState<WorkerState> store, TimeProvider clock) : Grain, IWorkerGrain
{
    DateTimeOffset lastHeartbeat;

    IWorkerPoolGrain Pool => GrainFactory.GetGrain<IWorkerPoolGrain>(0);

    public async Task Register(WorkerRegistration registration)
    {
        string id = this.GetPrimaryKeyString();
        if (registration.WorkerId != id) throw new ArgumentException($"registration for worker '{registration.WorkerId}' sent to worker '{id}'");
        if (string.IsNullOrWhiteSpace(registration.Endpoint)) throw new ArgumentException($"worker '{id}': endpoint is required");
        if (registration.Slots < 1) throw new ArgumentException($"worker '{id}': slots must be ≥ 1, got {registration.Slots}");
        store.State.Registration = registration;
        await store.WriteStateAsync();
        lastHeartbeat = clock.GetUtcNow();
        await Pool.Join(registration, lastHeartbeat);
    }

    public async Task<HeartbeatOutcome> Heartbeat()
    {
        var registration = store.State.Registration ?? throw new UnknownWorkerException(this.GetPrimaryKeyString());
        var at = clock.GetUtcNow();
        // awaited, not one-way: the pool calls this grain only one-way (Assign), so neither ever waits on the other
        if (await Pool.Heartbeat(registration, at) is { } dead) return new HeartbeatOutcome(null, dead);
        lastHeartbeat = at;
        return new HeartbeatOutcome(store.State.Assignment, null);
    }

    public Task<WorkerMember?> GetInfo() => Task.FromResult(store.State.Registration is { } r
        ? new WorkerMember(r, lastHeartbeat, Alive: false /* the pool decides liveness */, store.State.Assignment)
        : null);

    public async Task Assign(WorkerAssignment? assignment)
    {
        store.State.Assignment = assignment;
        await store.WriteStateAsync();
    }
}
