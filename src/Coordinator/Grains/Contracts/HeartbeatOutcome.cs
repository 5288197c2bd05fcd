namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>A heartbeat's answer: the worker's assignment (null: idle), or, when the pool counted the worker dead,
/// why (<see cref="CountedDead"/>; the heartbeat was not counted and the worker must register again).</summary>
[GenerateSerializer, Immutable]
public sealed record HeartbeatOutcome(
    [property: Id(0)] WorkerAssignment? Assignment,
    [property: Id(1)] string? CountedDead);
