namespace Jetpack.Coordinator.Training;

/// <summary>
/// A worker of a run is gone (its process does not answer, or another process answers at its
/// endpoint): the job recovers on the remaining workers rather than failing. Thrown by the
/// training driver; the JobGrain reports it to the pool.
/// </summary>
public sealed class WorkerLostException(string workerId, string message) : Exception(message)
{
    public string WorkerId { get; } = workerId;
}

/// <summary>
/// Every worker of a run answers the coordinator, but some cannot reach each other (their data
/// planes' liveness checks name each other: a partition, issue 20 fault 3). <see cref="Dropped"/> is
/// a minimal set of workers whose removal leaves the rest fully connected; the job recovers from its
/// last checkpoint without them (they stay alive in the pool, left out of this job's next attempt).
/// </summary>
public sealed class PartitionException(IReadOnlyList<string> dropped, string message) : Exception(message)
{
    public IReadOnlyList<string> Dropped { get; } = dropped;

    /// <summary>
    /// Ranks to drop so that no unreachable pair remains: greedily the rank named in most pairs
    /// (ties: the higher rank, so rank 0 and the lower ranks stay). For one cut pair that is one rank.
    /// </summary>
    public static IReadOnlyList<int> MinimalDrop(IEnumerable<(int A, int B)> unreachable)
    {
        var edges = unreachable.Where(e => e.A != e.B).Select(e => (Math.Min(e.A, e.B), Math.Max(e.A, e.B))).ToHashSet();
        var dropped = new List<int>();
        while (edges.Count > 0)
        {
            int worst = edges.SelectMany(e => new[] { e.Item1, e.Item2 }).GroupBy(r => r)
                             .OrderByDescending(g => g.Count()).ThenByDescending(g => g.Key).First().Key;
            dropped.Add(worst);
            edges.RemoveWhere(e => e.Item1 == worst || e.Item2 == worst);
        }
        dropped.Sort();
        return dropped;
    }
}
