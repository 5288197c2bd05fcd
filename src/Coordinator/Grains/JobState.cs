using Jetpack.Model.Training;
using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Jobs;

namespace Jetpack.Coordinator.Grains;

/// <summary>The persisted state of a <see cref="JobGrain"/> (written at every phase change).</summary>
[GenerateSerializer]
public sealed class JobState
{
    [Id(0)] public bool Submitted { get; set; }
    [Id(1)] public string SpecText { get; set; } = "";
    [Id(2)] public string Format { get; set; } = "";
    [Id(3)] public string Source { get; set; } = "";
    [Id(4)] public string SpecHash { get; set; } = "";
    [Id(5)] public JobPhase Phase { get; set; } = JobPhase.Pending;
    [Id(6)] public string Message { get; set; } = "";
    [Id(7)] public long Step { get; set; }
    [Id(8)] public long TotalSteps { get; set; }
    [Id(9)] public double Loss { get; set; } = double.NaN;
    [Id(10)] public double ImagesPerSecond { get; set; }
    [Id(11)] public List<WorkerAssignment> Workers { get; set; } = [];
    [Id(12)] public int Recoveries { get; set; }
    [Id(13)] public string CheckpointKey { get; set; } = "";
    [Id(14)] public string CheckpointPath { get; set; } = "";
    [Id(15)] public bool CheckpointReused { get; set; }
    [Id(16)] public DateTimeOffset SubmittedAt { get; set; }
    [Id(17)] public DateTimeOffset UpdatedAt { get; set; }
    [Id(18)] public long Version { get; set; }
    /// <summary>Increases whenever background work starts; reports carrying an older number are ignored.</summary>
    [Id(19)] public int Attempt { get; set; }
    [Id(20)] public string Name { get; set; } = "";
    [Id(21)] public string Model { get; set; } = "";
    /// <summary>Persisted when it arrives (every eval_every steps), so status shows it after a coordinator restart.</summary>
    [Id(22)] public EvalResult? LastEval { get; set; }
    [Id(23)] public string FinalModelPath { get; set; } = "";
}
