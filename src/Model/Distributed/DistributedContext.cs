namespace Jetpack.Model.Distributed;

/// <summary>
/// One rank's view of an expert-parallel training job, given to the <c>Trainer</c>. Build the model
/// with <see cref="Shard"/> (<c>ModelRegistry.Create(spec, device, context.Shard)</c>), then
/// <c>new Trainer(spec, model, data, options, device, context)</c>. The exchange carries slots
/// between the expert owners of this rank's group; the reducer sums replicated gradients, the loss
/// and the expert part of the gradient norm over the world, and serves as the barrier of
/// distributed checkpoints; the expert reducer sums this rank's expert gradients over the ranks
/// holding the same experts in the other replicas (<see cref="ParallelLayout"/>; null when R = 1).
/// </summary>
public sealed class DistributedContext
{
    /// <summary>The default layout (G = world): one expert group, the exchange and the reducer span the world.</summary>
    public DistributedContext(int rank, int worldSize, IExpertExchange exchange, IGradientReducer reducer)
        : this(ParallelLayout.Flat(worldSize), rank, exchange, reducer, expertReducer: null) { }

    /// <param name="layout">world = G × R</param>
    /// <param name="rank">this rank in the world</param>
    /// <param name="exchange">the all-to-all of this rank's expert group (rank = position, world = G)</param>
    /// <param name="reducer">the all-reduce over the world</param>
    /// <param name="expertReducer">the all-reduce over <see cref="ParallelLayout.Holders"/> (rank = replica, world = R); required when R &gt; 1</param>
    public DistributedContext(ParallelLayout layout, int rank, IExpertExchange exchange, IGradientReducer reducer, IGradientReducer? expertReducer)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        ArgumentNullException.ThrowIfNull(reducer);
        if (reducer.Rank != rank || reducer.WorldSize != layout.WorldSize)
            throw new ArgumentException($"the reducer is rank {reducer.Rank} of {reducer.WorldSize}, the context rank {rank} of {layout.WorldSize}");
        if (exchange.Rank != layout.Position(rank) || exchange.WorldSize != layout.ExpertParallel)
            throw new ArgumentException($"rank {rank} ({layout}): the exchange is rank {exchange.Rank} of {exchange.WorldSize}, the expert group wants position {layout.Position(rank)} of {layout.ExpertParallel}");
        if (layout.Replicas > 1 && (expertReducer is null || expertReducer.Rank != layout.Replica(rank) || expertReducer.WorldSize != layout.Replicas))
            throw new ArgumentException($"rank {rank} ({layout}): the expert reducer must be replica {layout.Replica(rank)} of {layout.Replicas}, got {(expertReducer is null ? "none" : $"{expertReducer.Rank} of {expertReducer.WorldSize}")}");
        Layout = layout;
        Rank = rank;
        Shard = new ExpertShard(layout.ExpertParallel, layout.Position(rank), exchange);
        Reducer = reducer;
        ExpertReducer = layout.Replicas > 1 ? expertReducer : null;
    }

    public ParallelLayout Layout { get; }
    /// <summary>This rank in the world (data slice, random streams, checkpoint barrier).</summary>
    public int Rank { get; }
    public int WorldSize => Layout.WorldSize;
    /// <summary>This rank's experts: position <c>Layout.Position(Rank)</c> of a group of G.</summary>
    public ExpertShard Shard { get; }
    public IExpertExchange Exchange => Shard.Exchange!;
    public IGradientReducer Reducer { get; }
    /// <summary>Sums expert gradients over the R replicas; null when R = 1.</summary>
    public IGradientReducer? ExpertReducer { get; }

    /// <summary>Whether this rank writes its expert slice into checkpoints (replica 0; the others hold copies).</summary>
    public bool WritesExperts => Layout.Replica(Rank) == 0;

    /// <summary>Elements per all-reduce bucket of replicated gradients (4 Mi fp32 = 16 MB).</summary>
    public long BucketElements { get; init; } = 1L << 22;
}
