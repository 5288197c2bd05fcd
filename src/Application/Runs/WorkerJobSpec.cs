using System.Text.Json;
using System.Text.Json.Serialization;
using Jetpack.Application.Runs;
using Jetpack.Model.Models;

namespace Jetpack.Application.Runs;

/// <summary>Where a scattered training checkpoint stands (its manifest's step, optimizer steps, data position) and where it came from.</summary>
public sealed record ScatteredResume(long Step, long OptimizerSteps, Jetpack.Model.Checkpoints.DataPosition Data, string Source);

/// <summary>
/// A training job as StartJob carries it (JSON, snake_case): the run (<see cref="RunSpec"/>: model,
/// init, data, recipe, cadences) plus what only workers need — an inline model spec for models
/// outside the registry, where the initial tensors come from, the shared checkpoint directory and
/// the device. Every rank gets the same spec.
/// </summary>
public sealed record WorkerJobSpec : RunSpec
{
    /// <summary>A full <see cref="ModelSpec"/> as JSON (ModelSpec.Json); overrides <see cref="RunSpec.Model"/> (and its deterministic switch: the sender resolved it).</summary>
    public string? ModelSpecJson { get; init; }
    /// <summary>Start from the tensors LoadShard delivered to each rank (the coordinator's scatter) instead of init/seed.</summary>
    public bool InitFromLoadedShard { get; init; }
    /// <summary>Resume from a training checkpoint the coordinator scattered with LoadShard (this rank's
    /// <c>p.</c>/<c>m.</c>/<c>v.</c> tensors, re-sliced for this world): the checkpoint's step, optimizer step count and data position.</summary>
    public ScatteredResume? ResumeFromLoadedShard { get; init; }
    /// <summary>Topology-free checkpoint directory (shared by the ranks); null = none.</summary>
    public string? CheckpointDir { get; init; }

    public WorkerJobSpec() { }

    /// <summary>The workers' spec of <paramref name="run"/>: every run field copied by the record's copy
    /// constructor (none forgotten by hand); the worker-only fields at their defaults.</summary>
    public WorkerJobSpec(RunSpec run) : base(run) { }

    protected override bool NamesRegisteredModel => ModelSpecJson is null;

    public static JsonSerializerOptions Json => SpecJson.Options;

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses and validates; errors name the field.</summary>
    public static WorkerJobSpec Parse(string json)
    {
        WorkerJobSpec spec;
        try { spec = JsonSerializer.Deserialize<WorkerJobSpec>(json, Json) ?? throw new ArgumentException("job spec: empty"); }
        catch (JsonException e) { throw new ArgumentException($"job spec: {e.Message}", e); }
        if (spec.ModelSpecJson is null && string.IsNullOrEmpty(spec.Model?.Base)) throw new ArgumentException("job spec: model: a variant name or model_spec_json is required");
        if (spec.InitFromLoadedShard && spec.Init is not null) throw new ArgumentException("job spec: init and init_from_loaded_shard exclude each other");
        if (spec.ResumeFromLoadedShard is not null && (spec.InitFromLoadedShard || spec.Init is not null))
            throw new ArgumentException("job spec: resume_from_loaded_shard excludes init and init_from_loaded_shard");
        spec.Validate("job spec");
        try { spec.Recipe.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"job spec: recipe: {e.Message}", e); }
        return spec;
    }

    /// <summary>The model the ranks build: the inline spec, else the run's (registered variant, deterministic switch applied).</summary>
    public ModelSpec ResolveWorkerModel()
    {
        if (ModelSpecJson is null) return ResolveModel();
        try
        {
            return JsonSerializer.Deserialize<ModelSpec>(ModelSpecJson, ModelSpec.Json) ?? throw new ArgumentException("job spec: model_spec_json: empty");
        }
        catch (JsonException e) { throw new ArgumentException($"job spec: model_spec_json: {e.Message}", e); }
    }
}
