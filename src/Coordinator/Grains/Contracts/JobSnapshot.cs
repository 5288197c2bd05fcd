using Jetpack.Model.Training;
using Jetpack.Coordinator.Jobs;

namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>What a job looks like from outside: the JobService maps it to jobs.proto's JobStatus.</summary>
[GenerateSerializer, Immutable]
public sealed record JobSnapshot
{
    [Id(0)] public required string JobId { get; init; }
    [Id(1)] public required string Name { get; init; }
    [Id(2)] public required string Model { get; init; }
    [Id(3)] public required JobPhase Phase { get; init; }
    /// <summary>Why the job failed or was cancelled, else the reason of its last recovery.</summary>
    [Id(4)] public string Message { get; init; } = "";
    [Id(5)] public long Step { get; init; }
    [Id(6)] public long TotalSteps { get; init; }
    [Id(7)] public double Loss { get; init; } = double.NaN;
    [Id(8)] public double ImagesPerSecond { get; init; }
    [Id(9)] public IReadOnlyList<string> Workers { get; init; } = [];
    [Id(10)] public int Recoveries { get; init; }
    [Id(11)] public string CheckpointKey { get; init; } = "";
    [Id(12)] public string CheckpointPath { get; init; } = "";
    [Id(13)] public bool CheckpointReused { get; init; }
    [Id(14)] public DateTimeOffset SubmittedAt { get; init; }
    [Id(15)] public DateTimeOffset UpdatedAt { get; init; }
    /// <summary>Increases with every change (Watch sends each version at most once).</summary>
    [Id(16)] public long Version { get; init; }
    /// <summary>The job's last evaluation (top-1, top-5, eval loss, at which step); null before the first.</summary>
    [Id(17)] public EvalResult? LastEval { get; init; }
    /// <summary>The job's output directory (checkpoint/, metrics.jsonl, final.safetensors).</summary>
    [Id(18)] public string OutDirectory { get; init; } = "";
    /// <summary>The full model written when the job completed (<c>OutDirectory/final.safetensors</c>); empty before.</summary>
    [Id(19)] public string FinalModelPath { get; init; } = "";
    /// <summary>The expert placement of the job's layout (<c>ExpertPlacement.Describe</c>); empty before it has workers.</summary>
    [Id(20)] public string Placement { get; init; } = "";
}
