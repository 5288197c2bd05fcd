using Jetpack.Model.Training;
using Jetpack.Coordinator.Grains.Contracts;

namespace Jetpack.Coordinator.Training;

/// <summary>
/// The seam between the JobGrain and the workers (DESIGN.md: "gRPC (WorkerControl: load shard,
/// start, checkpoint, stop; progress back)"). The grain calls it on background tasks and is told
/// the outcome; <see cref="GrpcTrainingDriver"/> drives WorkerControl (issue 5's engine). A worker
/// found gone is a <see cref="WorkerLostException"/> (the job recovers); anything else fails the job.
/// </summary>
public interface ITrainingDriver
{
    /// <summary>Sends every rank its dense replica and expert shard of <see cref="TrainingRun.CheckpointPath"/>
    /// (or, when <see cref="TrainingRun.Resume"/>, of the job's last training checkpoint, re-sliced
    /// for the current world size). Returns when every rank has loaded, with what training needs to
    /// know of it (the run id, the processes that joined, where it resumes).</summary>
    Task<ScatterPlan> ScatterAsync(TrainingRun run, CancellationToken cancel);

    /// <summary>Starts training on every rank and returns when the last step is done (null), or the step
    /// after which every rank stopped on a <see cref="StopAfterAsync"/> request; reports progress
    /// (rank 0's loss and throughput) as it goes. Throws on a worker failure.</summary>
    Task<long?> TrainAsync(TrainingRun run, ScatterPlan plan, IProgress<TrainingProgress> progress, CancellationToken cancel);

    /// <summary>Asks every rank of the running attempt <paramref name="run"/> to stop after <paramref name="step"/>
    /// (a checkpoint step: the ranks save it, then end, and <see cref="TrainAsync"/> returns the step).
    /// Throws when a rank refuses (it is past the step, or has no such run).</summary>
    Task StopAfterAsync(TrainingRun run, long step, string reason, CancellationToken cancel);

    /// <summary>After <see cref="TrainAsync"/> returned: gathers the job's final training checkpoint
    /// into one full model, <c>OutDirectory/final.safetensors</c> (<see cref="FinalModel"/>), with
    /// <paramref name="lastEval"/> in its metadata when known. Returns its path; throws when the
    /// checkpoint is missing, incomplete or not of the last step (the job then fails).</summary>
    Task<string> FinishAsync(TrainingRun run, EvalResult? lastEval, CancellationToken cancel);
}
