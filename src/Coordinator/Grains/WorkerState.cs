using Jetpack.Coordinator.Grains.Contracts;

namespace Jetpack.Coordinator.Grains;

/// <summary>The persisted registration of a <see cref="WorkerGrain"/> (heartbeats are not persisted).</summary>
[GenerateSerializer]
public sealed class WorkerState
{
    [Id(0)] public WorkerRegistration? Registration { get; set; }
    [Id(1)] public WorkerAssignment? Assignment { get; set; }
}
