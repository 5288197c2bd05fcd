namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>
/// The answer of <see cref="IRecycledCheckpointGrain.Request"/>: the checkpoint when it already
/// exists (<see cref="Checkpoint"/> set, <see cref="Reused"/> true), else a promise that the job
/// will be told through <see cref="IJobGrain.OnCheckpointReady"/> or <see cref="IJobGrain.OnStageFailed"/>.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record RecycleTicket(
    [property: Id(0)] RecycledCheckpoint? Checkpoint,
    [property: Id(1)] bool Reused);
