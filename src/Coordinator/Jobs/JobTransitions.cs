namespace Jetpack.Coordinator.Jobs;

/// <summary>
/// The job state machine as a table (DESIGN.md "Coordinator grains"): Pending → Recycling →
/// Scattering → Training → Completed, with Recovering between a worker loss and the re-scatter
/// from the last checkpoint, and Training → Scattering when an elastic job grows onto more workers at a
/// checkpoint boundary (issue 20 fault 7: not a fault, so not through Recovering); any live phase may
/// fail or be cancelled; ended phases never move.
/// </summary>
public static class JobTransitions
{
    static readonly Dictionary<JobPhase, JobPhase[]> Legal = new()
    {
        [JobPhase.Pending] = [JobPhase.Recycling, JobPhase.Failed, JobPhase.Cancelled],
        [JobPhase.Recycling] = [JobPhase.Scattering, JobPhase.Failed, JobPhase.Cancelled],
        [JobPhase.Scattering] = [JobPhase.Training, JobPhase.Recovering, JobPhase.Failed, JobPhase.Cancelled],
        [JobPhase.Training] = [JobPhase.Completed, JobPhase.Recovering, JobPhase.Scattering, JobPhase.Failed, JobPhase.Cancelled],
        [JobPhase.Recovering] = [JobPhase.Scattering, JobPhase.Failed, JobPhase.Cancelled],
        [JobPhase.Completed] = [],
        [JobPhase.Failed] = [],
        [JobPhase.Cancelled] = [],
    };

    public static bool IsAllowed(JobPhase from, JobPhase to) => Legal[from].Contains(to);

    public static bool IsTerminal(JobPhase phase) => Legal[phase].Length == 0;

    /// <summary>The phases a job in <paramref name="from"/> may move to.</summary>
    public static IReadOnlyList<JobPhase> Next(JobPhase from) => Legal[from];

    /// <exception cref="IllegalTransitionException">when the table has no such edge.</exception>
    public static void Check(string jobId, JobPhase from, JobPhase to)
    {
        if (!IsAllowed(from, to)) throw new IllegalTransitionException(jobId, from, to);
    }
}
