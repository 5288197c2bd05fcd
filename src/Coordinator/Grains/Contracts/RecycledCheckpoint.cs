namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>A recycled MoE checkpoint on shared storage, addressed by its content key.</summary>
[GenerateSerializer, Immutable]
public sealed record RecycledCheckpoint(
    [property: Id(0)] string Key,
    [property: Id(1)] string Path,
    [property: Id(2)] string ReportPath,
    [property: Id(3)] double Seconds);
