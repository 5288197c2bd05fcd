using Jetpack.Coordinator.Grains.Contracts;

namespace Jetpack.Coordinator.Grains;

/// <summary>The persisted state of a <see cref="RecycledCheckpointGrain"/>.</summary>
[GenerateSerializer]
public sealed class RecycledCheckpointState
{
    [Id(0)] public RecycledCheckpoint? Checkpoint { get; set; }
    /// <summary>Recyclings started (the current run's number while one runs).</summary>
    [Id(1)] public int Runs { get; set; }
    [Id(2)] public bool Running { get; set; }
    /// <summary>Jobs waiting for the running recycling: (job id, the job's attempt).</summary>
    [Id(3)] public List<(string JobId, int Attempt)> Waiters { get; set; } = [];
    [Id(4)] public string LastError { get; set; } = "";
}
