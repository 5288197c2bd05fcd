using Orleans.Concurrency;

namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>
/// A recycled checkpoint (key: content hash of the source checkpoints + recipe + seed,
/// <see cref="Jetpack.Coordinator.Recycling.RecycleKey"/>): recycles once; every later request
/// with the same key reuses the result (DESIGN.md "Coordinator grains").
/// </summary>
public interface IRecycledCheckpointGrain : IGrainWithStringKey
{
    /// <summary>The checkpoint if it exists; else starts recycling (at most one run at a time) and
    /// tells the job when it is done.</summary>
    Task<RecycleTicket> Request(RecycleRequest request, string jobId, int attempt);
    /// <summary>null until a recycling has succeeded.</summary>
    Task<RecycledCheckpoint?> GetCheckpoint();
    /// <summary>How many recyclings this key has started (1 when reuse works).</summary>
    Task<int> GetRuns();
    [OneWay] Task OnRecycled(int run, RecycledCheckpoint checkpoint);
    [OneWay] Task OnRecycleFailed(int run, string message);
}
