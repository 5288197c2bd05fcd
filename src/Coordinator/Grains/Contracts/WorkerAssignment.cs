namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>A worker lent to a job as one rank.</summary>
[GenerateSerializer, Immutable]
public sealed record WorkerAssignment(
    [property: Id(0)] string WorkerId,
    [property: Id(1)] string Endpoint,
    [property: Id(2)] string JobId,
    [property: Id(3)] int Rank);
