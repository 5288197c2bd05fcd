namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>A worker announces itself: its WorkerControl endpoint and how many ranks it can host.</summary>
[GenerateSerializer, Immutable]
public sealed record WorkerRegistration(
    [property: Id(0)] string WorkerId,
    [property: Id(1)] string Endpoint,
    [property: Id(2)] int Slots);
