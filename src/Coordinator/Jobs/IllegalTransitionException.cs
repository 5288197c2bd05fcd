namespace Jetpack.Coordinator.Jobs;

/// <summary>A job was asked to move along an edge the state machine does not have.</summary>
public sealed class IllegalTransitionException : InvalidOperationException
{
    public IllegalTransitionException(string jobId, JobPhase from, JobPhase to)
        : base($"job '{jobId}': illegal transition {from} → {to} (allowed from {from}: {Allowed(from)})")
    {
        JobId = jobId; From = from; To = to;
    }

    public string JobId { get; }
    public JobPhase From { get; }
    public JobPhase To { get; }

    static string Allowed(JobPhase from) => JobTransitions.Next(from) is { Count: > 0 } next ? string.Join(", ", next) : "none, the job has ended";
}
