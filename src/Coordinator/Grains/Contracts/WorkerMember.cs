namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>One entry of the pool's live membership.</summary>
[GenerateSerializer, Immutable]
public sealed record WorkerMember(
    [property: Id(0)] WorkerRegistration Registration,
    [property: Id(1)] DateTimeOffset LastHeartbeat,
    [property: Id(2)] bool Alive,
    [property: Id(3)] WorkerAssignment? Assignment);
