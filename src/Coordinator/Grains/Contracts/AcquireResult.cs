namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>Workers handed to a job (ranks 0..n-1), or why there were not enough.</summary>
[GenerateSerializer, Immutable]
public sealed record AcquireResult(
    [property: Id(0)] IReadOnlyList<WorkerAssignment> Workers,
    [property: Id(1)] string? Error);
