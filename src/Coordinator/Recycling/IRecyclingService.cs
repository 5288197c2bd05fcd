using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Jobs;

namespace Jetpack.Coordinator.Recycling;

/// <summary>
/// Does the I/O and tensor work of recycling for the grains, which only orchestrate: called on
/// background tasks, never inside a grain turn.
/// </summary>
public interface IRecyclingService
{
    /// <summary>The content key of a recycling (hashes the source files: seconds for large checkpoints).</summary>
    Task<string> ComputeKeyAsync(string model, RecycleSpec spec, CancellationToken cancel);

    /// <summary>Recycles and writes the checkpoint; throws with the reason on failure.</summary>
    Task<RecycledCheckpoint> RecycleAsync(RecycleRequest request, CancellationToken cancel);
}
