using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Jobs;

namespace Jetpack.Coordinator.Training;

/// <summary>One attempt at the Scattering + Training phases of a job.</summary>
/// <param name="Attempt">The job's attempt number (increases at every recovery).</param>
/// <param name="Resume">true after a recovery or a growth: start from the job's last training checkpoint in <paramref name="OutDirectory"/>.</param>
/// <param name="Cause">why this attempt runs, for attempts.jsonl: "start", "recovery: …", "grew from 2 to 3 workers at step N".</param>
public sealed record TrainingRun(
    string JobId,
    int Attempt,
    JobSpec Spec,
    string CheckpointPath,
    string OutDirectory,
    IReadOnlyList<WorkerAssignment> Workers,
    bool Resume,
    string Cause = "");
