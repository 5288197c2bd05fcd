namespace Jetpack.Model.Distributed;

/// <summary>
/// How a job's ranks split the work (DESIGN.md "Parallel layout"): world = G × R. G ranks share the
/// experts of one model replica (expert parallelism: each holds its <see cref="ExpertPlacement"/>
/// part and they exchange slots all-to-all); the R groups are data-parallel replicas of each other.
/// Rank r is position <c>r mod G</c> of replica <c>r / G</c>, so a group is G consecutive ranks and
/// the global batch is still sliced by world rank. Gradients of replicated (non-expert) parameters
/// are summed over all ranks; those of an expert slice over the R ranks holding it (the same
/// position in every replica). G = world (R = 1) is plain expert parallelism, the default.
/// </summary>
public readonly record struct ParallelLayout
{
    public ParallelLayout(int worldSize, int expertParallel)
    {
        if (worldSize < 1) throw new ArgumentOutOfRangeException(nameof(worldSize), $"world size must be ≥ 1, got {worldSize}");
        if (expertParallel < 1 || worldSize % expertParallel != 0)
            throw new ArgumentException($"parallel.expert_parallel: {expertParallel} must be ≥ 1 and divide the world size {worldSize}");
        WorldSize = worldSize;
        ExpertParallel = expertParallel;
    }

    /// <summary>The default layout: every rank in one expert-parallel group.</summary>
    public static ParallelLayout Flat(int worldSize) => new(worldSize, worldSize);

    /// <summary><paramref name="expertParallel"/> null or 0 means G = world.</summary>
    public static ParallelLayout Of(int worldSize, int? expertParallel) =>
        new(worldSize, expertParallel is null or 0 ? worldSize : expertParallel.Value);

    public int WorldSize { get; }
    /// <summary>G: ranks per expert-parallel group.</summary>
    public int ExpertParallel { get; }
    /// <summary>R: data-parallel replicas.</summary>
    public int Replicas => WorldSize / ExpertParallel;

    /// <summary>The rank's place in its expert group (which experts it holds).</summary>
    public int Position(int rank) => Check(rank) % ExpertParallel;

    /// <summary>The rank's replica (which expert group it belongs to).</summary>
    public int Replica(int rank) => Check(rank) / ExpertParallel;

    /// <summary>The world ranks of the rank's expert group, in position order.</summary>
    public int[] Group(int rank)
    {
        int first = Replica(rank) * ExpertParallel;
        return Enumerable.Range(first, ExpertParallel).ToArray();
    }

    /// <summary>The world ranks that hold the same experts as the rank (one per replica), in replica order.</summary>
    public int[] Holders(int rank)
    {
        int p = Position(rank), g = ExpertParallel;
        return Enumerable.Range(0, Replicas).Select(q => q * g + p).ToArray();
    }

    private int Check(int rank) => rank >= 0 && rank < WorldSize ? rank
        : throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} outside a world of {WorldSize}");

    public override string ToString() => $"world {WorldSize} = {ExpertParallel} expert-parallel × {Replicas} replicas";
}
