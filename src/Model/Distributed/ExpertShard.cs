using Jetpack.Model.Models;

namespace Jetpack.Model.Distributed;

/// <summary>
/// Where a model sits in an expert-parallel group (DESIGN.md, "One training step"; with replicas,
/// <see cref="ParallelLayout"/>: Rank and WorldSize are the position in the group and G): rank
/// <see cref="Rank"/> of <see cref="WorldSize"/> holds, in every MoE layer, only its
/// <see cref="ExpertRange"/> of core and universal experts (state-dict keys unchanged, shapes the
/// local slice); everything else is replicated. Built with
/// <c>ModelRegistry.Create(spec, device, shard)</c>; every MoE layer of the model keeps a reference
/// to this object, through which the trainer tells the layers which (step, micro-batch) the next
/// forward belongs to and how many samples each rank holds in it, and through which a failure
/// inside a backward pass (where an exception would abort the process) reaches the trainer.
/// One shard object per model (per rank); not shared between threads.
/// </summary>
public sealed class ExpertShard
{
    private readonly List<IDisposable> pending = [];
    private int[] rankBatches = [];

    /// <param name="exchange">the all-to-all; null = no exchange: only a world of one can run a forward
    /// (the experts are all local), larger worlds can only hold and load weights</param>
    public ExpertShard(int worldSize, int rank, IExpertExchange? exchange = null)
    {
        if (worldSize < 1 || rank < 0 || rank >= worldSize)
            throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} outside a world of {worldSize}");
        if (exchange is not null && (exchange.Rank != rank || exchange.WorldSize != worldSize))
            throw new ArgumentException($"the exchange is rank {exchange.Rank} of {exchange.WorldSize}, the shard rank {rank} of {worldSize}");
        WorldSize = worldSize;
        Rank = rank;
        Exchange = exchange;
    }

    public int WorldSize { get; }
    public int Rank { get; }
    public IExpertExchange? Exchange { get; }

    /// <summary>This rank's experts of a layer with <paramref name="config"/>.</summary>
    public ExpertRange Range(MoeConfig config) => ExpertRange.For(config, WorldSize, Rank);

    /// <summary>Rank <paramref name="rank"/>'s experts of a layer with <paramref name="config"/>.</summary>
    public ExpertRange RangeOf(MoeConfig config, int rank) => ExpertRange.For(config, WorldSize, rank);

    public long Step { get; private set; }
    public int Micro { get; private set; }

    /// <summary>Samples each rank holds in the current micro-batch (the all-to-all's expected shapes need them).</summary>
    public IReadOnlyList<int> RankBatches => rankBatches;

    /// <summary>
    /// Called before each forward: the tag of the coming exchanges and every rank's local batch size
    /// (the trainer knows them all: <c>DistributedSampler.RankSlice</c> of the global micro-batch).
    /// </summary>
    public void BeginMicroBatch(long step, int micro, IReadOnlyList<int> batchPerRank)
    {
        if (batchPerRank.Count != WorldSize)
            throw new ArgumentException($"batch sizes for {batchPerRank.Count} ranks, world is {WorldSize}");
        Step = step;
        Micro = micro;
        rankBatches = batchPerRank.ToArray();
    }

    /// <summary>The first failure recorded inside a backward pass, if any (see <see cref="ThrowIfBackwardFailed"/>).</summary>
    public ExchangeFailedException? BackwardFailure { get; private set; }

    /// <summary>
    /// Records a failure caught inside a custom backward (an exception escaping it would abort the
    /// process, ENVIRONMENT.md). Later backward calls of the same pass skip their exchanges.
    /// </summary>
    internal void RecordBackwardFailure(Exception e, ExchangeTag tag)
    {
        BackwardFailure ??= e as ExchangeFailedException
            ?? new ExchangeFailedException($"rank {Rank}: backward of {tag} failed: {e.Message}", e);
    }

    /// <summary>Throws (and clears) the recorded backward failure: call after every <c>backward()</c>.</summary>
    public void ThrowIfBackwardFailed()
    {
        if (BackwardFailure is { } f)
        {
            BackwardFailure = null;
            throw new ExchangeFailedException($"rank {Rank}: the backward pass failed ({f.Message}); gradients of step {Step} are invalid", f);
        }
    }

    /// <summary>Graph pieces kept from a forward for its backward; released by the backward or by <see cref="ReleasePending"/>.</summary>
    internal void Keep(IDisposable saved) => pending.Add(saved);

    internal void Release(IDisposable saved)
    {
        if (pending.Remove(saved)) saved.Dispose();
    }

    /// <summary>Forwards whose kept graphs await their backward (tests: 0 after every backward).</summary>
    internal int PendingCount => pending.Count;

    /// <summary>Frees what forwards kept for backwards that never ran (a failed step, a forward without backward).</summary>
    public void ReleasePending()
    {
        foreach (var p in pending) p.Dispose();
        pending.Clear();
    }

    public override string ToString() => $"rank {Rank} of {WorldSize}";
}
