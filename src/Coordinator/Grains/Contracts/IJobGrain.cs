using Jetpack.Coordinator.Training;
using Orleans.Concurrency;

namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>
/// One job (key: job id): the state machine Pending → Recycling → Scattering → Training →
/// Completed | Failed | Cancelled, with Recovering (DESIGN.md "Coordinator grains"). Its state is
/// persisted at every phase change. Long work (recycling, scatter, training) runs elsewhere and
/// reports back through the <c>On*</c> methods, each fenced by the attempt number it was started
/// with, so a report from an abandoned attempt (after a cancel or a recovery) is ignored.
/// </summary>
public interface IJobGrain : IGrainWithStringKey
{
    /// <summary>Validates and starts the job; the same submission again returns the job as it is
    /// (idempotent); a different spec under this id, or an invalid one, is refused.</summary>
    Task<SubmitOutcome> Submit(JobSubmission submission);

    /// <summary>null when no job was ever submitted under this id.</summary>
    Task<JobSnapshot?> GetStatus();

    /// <summary>Returns as soon as the version exceeds <paramref name="afterVersion"/>, or after
    /// <paramref name="maxWait"/> with the current status (long poll; interleaves with other calls).</summary>
    [AlwaysInterleave]
    Task<JobSnapshot?> WaitForChange(long afterVersion, TimeSpan maxWait);

    /// <summary>Cancels a live job; an ended job is returned unchanged (idempotent).</summary>
    Task<JobSnapshot?> Cancel(string reason);

    /// <summary>After a coordinator restart: picks a live job up where its persisted phase says.</summary>
    Task Resume();

    [OneWay] Task OnCheckpointReady(int attempt, RecycledCheckpoint checkpoint, bool reused);
    [OneWay] Task OnScattered(int attempt, ScatterPlan plan);
    [OneWay] Task OnProgress(int attempt, TrainingProgress progress);
    /// <summary>Every rank completed and the driver wrote the job's full model to <paramref name="finalModelPath"/>.</summary>
    [OneWay] Task OnTrainingCompleted(int attempt, string finalModelPath);
    /// <summary>Every rank stopped after <paramref name="step"/>, as a growth asked (issue 20 fault 7): the job scatters that checkpoint onto more workers.</summary>
    [OneWay] Task OnTrainingStopped(int attempt, long step);
    /// <summary>A rank refused the growth's stop after <paramref name="step"/> (it was past it): training goes on, the next check asks again.</summary>
    [OneWay] Task OnGrowthRefused(int attempt, long step, string reason);
    [OneWay] Task OnStageFailed(int attempt, string message);
    /// <summary>From the worker pool: a worker of this job stopped heartbeating, or the training
    /// driver found it gone (<paramref name="reason"/> says which).</summary>
    [OneWay] Task OnWorkerLost(string workerId, string reason);
    /// <summary>From the training driver: workers of attempt <paramref name="attempt"/> cannot reach each
    /// other; the job recovers without <paramref name="dropped"/> (left out of the next acquisition).</summary>
    [OneWay] Task OnPartitioned(int attempt, string[] dropped, string reason);
}
