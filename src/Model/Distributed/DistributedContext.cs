namespace Jetpack.Model.Distributed;

/// <summary>
/// One rank's view of an expert-parallel training job, given to the <c>Trainer</c>. Build the model
/// with <see cref="Shard"/> (<c>ModelRegistry.Create(spec, device, context.Shard)</c>), then
/// <c>new Trainer(spec, model, data, options, device, context)</c>. The exchange carries slots
/// between expert owners; the reducer sums replicated gradients, the loss and the expert part of
/// the gradient norm, and serves as the barrier of distributed checkpoints.
/// </summary>
public sealed class DistributedContext
{
    public DistributedContext(int rank, int worldSize, IExpertExchange exchange, IGradientReducer reducer)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        ArgumentNullException.ThrowIfNull(reducer);
        if (reducer.Rank != rank || reducer.WorldSize != worldSize)
            throw new ArgumentException($"the reducer is rank {reducer.Rank} of {reducer.WorldSize}, the context rank {rank} of {worldSize}");
        Shard = new ExpertShard(worldSize, rank, exchange);
        Reducer = reducer;
    }

    public int Rank => Shard.Rank;
    public int WorldSize => Shard.WorldSize;
    public ExpertShard Shard { get; }
    public IExpertExchange Exchange => Shard.Exchange!;
    public IGradientReducer Reducer { get; }

    /// <summary>Elements per all-reduce bucket of replicated gradients (4 Mi fp32 = 16 MB).</summary>
    public long BucketElements { get; init; } = 1L << 22;
}
