namespace Jetpack.Application.Runs;

/// <summary>
/// The parallel layout of a run (the "parallel" of a run spec): world = G × R
/// (<see cref="Jetpack.Model.Distributed.ParallelLayout"/>). G ranks share one replica's experts, the R
/// groups are data-parallel replicas. Left out: G = world (every rank holds a share of the experts).
/// </summary>
public sealed record RunParallel
{
    /// <summary>G: ranks per expert-parallel group; must divide the number of workers. Null = the number of workers.</summary>
    public int? ExpertParallel { get; init; }
}
