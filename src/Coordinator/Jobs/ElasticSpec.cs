namespace Jetpack.Coordinator.Jobs;

/// <summary>
/// The elastic limits of a job (<c>elastic: {min_workers, max_workers}</c>, issue 20 fault 7).
/// <c>workers</c> is what the job needs to start; a recovery continues on at least
/// <see cref="MinWorkers"/> (default 1); a live idle worker is taken at the next checkpoint boundary
/// while the job holds fewer than <see cref="MaxWorkers"/> (default <c>workers</c>: a job that shrank
/// after a fault grows back). Checkpoints are topology-free, so any world size in between resumes
/// the same run (DESIGN.md "Checkpoints").
/// </summary>
public sealed record ElasticSpec
{
    /// <summary>The fewest workers a recovery continues on; null = 1.</summary>
    public int? MinWorkers { get; init; }
    /// <summary>The most workers the job takes, at its first scatter and when it grows; null = <c>workers</c>.</summary>
    public int? MaxWorkers { get; init; }
}
