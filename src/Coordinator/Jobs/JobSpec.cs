using Jetpack.Coordinator.Cli;
using Jetpack.Model.Training;

namespace Jetpack.Coordinator.Jobs;

/// <summary>
/// What a user submits (YAML or JSON, snake_case; read by <see cref="JobSpecReader"/>): recycle a
/// dense checkpoint into <see cref="Model"/>, then train it with expert parallelism on
/// <see cref="Workers"/> workers. Data and recipe are those of <c>jetpack train</c>.
/// </summary>
public sealed record JobSpec
{
    /// <summary>A DNS-label-like name (lowercase letters, digits, '-'); the default job id.</summary>
    public string Name { get; init; } = "";
    /// <summary>The MoE variant to build and train (registry name).</summary>
    public string Model { get; init; } = "v_jetmoe_fmnist";
    public int Workers { get; init; } = 1;
    public RecycleSpec Recycle { get; init; } = new();
    public TrainData Data { get; init; } = new();
    public TrainerOptions Recipe { get; init; } = new();
    public int EvalEvery { get; init; } = 100;
    public int CheckpointEvery { get; init; } = 200;
    /// <summary>Output directory of the job; default: &lt;data dir&gt;/jobs/&lt;job id&gt;.</summary>
    public string? Out { get; init; }
    /// <summary>Dropout, DropPath and routing noise off: the run then equals the single-process run on
    /// any number of workers, also across a recovery onto fewer workers (their random streams are
    /// per rank). For comparisons and tests; training quality wants them on (default).</summary>
    public bool Deterministic { get; init; }
    /// <summary>The torch device every rank trains on (cpu, cuda, cuda:1, …); null = each worker's own default.</summary>
    public string? Device { get; init; }
}
