using Jetpack.Coordinator.Jobs;

namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>What to recycle: the successor variant and the recycling choices, under their content key.</summary>
[GenerateSerializer, Immutable]
public sealed record RecycleRequest(
    [property: Id(0)] string Key,
    [property: Id(1)] string Model,
    [property: Id(2)] RecycleSpec Spec);
