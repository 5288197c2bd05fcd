using System.Text.Json.Serialization;
using Jetpack.Application.Runs;

namespace Jetpack.Coordinator.Jobs;

/// <summary>
/// What a user submits (YAML or JSON, snake_case; read by <see cref="JobSpecReader"/>): recycle a
/// dense checkpoint into <see cref="RunSpec.Model"/>, then train it with expert parallelism on
/// <see cref="Workers"/> workers. The run's fields (model, data, recipe, eval_every,
/// checkpoint_every, out, deterministic) are a <see cref="RunSpec"/>'s, written flat beside the job's.
/// </summary>
public sealed record JobSpec : RunSpec
{
    public JobSpec() { }

    /// <summary>A job that runs <paramref name="run"/>: every run field copied by the record's copy
    /// constructor (none forgotten by hand — a hand copy once dropped <c>deterministic</c>); the job's own fields at their defaults.</summary>
    public JobSpec(RunSpec run) : base(run) { }

    /// <summary>A DNS-label-like name (lowercase letters, digits, '-'); the default job id.</summary>
    public string Name { get; init; } = "";
    /// <summary>The workers the job needs to start (its first scatter waits for them).</summary>
    public int Workers { get; init; } = 1;
    /// <summary>Elastic limits (issue 20 fault 7); null = recover on ≥ 1 worker, grow back up to <see cref="Workers"/>.</summary>
    public ElasticSpec? Elastic { get; init; }
    public RecycleSpec Recycle { get; init; } = new();
    /// <summary>Recoveries the job may make (a lost worker, a partition, a coordinator restart); the one
    /// past it fails the job naming the repeated fault (issue 20 fault 8).</summary>
    public int MaxRecoveries { get; init; } = DefaultMaxRecoveries;
    /// <summary>Seconds before the first recovery's scatter, doubled at each further one (capped at
    /// <see cref="MaxRecoveryBackoffSeconds"/>): a fault that repeats at once does not spin.</summary>
    public double RecoveryBackoffSeconds { get; init; } = 1;

    /// <summary>The fewest workers a recovery continues on (elastic.min_workers, default 1).</summary>
    [JsonIgnore] public int MinWorkers => Elastic?.MinWorkers ?? 1;
    /// <summary>The most workers the job holds (elastic.max_workers, default <see cref="Workers"/>).</summary>
    [JsonIgnore] public int MaxWorkers => Elastic?.MaxWorkers ?? Workers;

    public const int DefaultMaxRecoveries = 10;
    public const double MaxRecoveryBackoffSeconds = 60;

    /// <summary>The wait before recovery number <paramref name="recovery"/> (1-based).</summary>
    public TimeSpan RecoveryBackoff(int recovery) =>
        TimeSpan.FromSeconds(Math.Min(MaxRecoveryBackoffSeconds, RecoveryBackoffSeconds * Math.Pow(2, Math.Max(0, recovery - 1))));
}
