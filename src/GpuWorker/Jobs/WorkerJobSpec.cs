using System.Text.Json;
using System.Text.Json.Serialization;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;

namespace Jetpack.GpuWorker.Jobs;

/// <summary>The data of a job: the same fields as `jetpack train`'s "data", classes already parsed.</summary>
public sealed record JobDataSpec
{
    /// <summary>fashion-mnist (Debian's dataset-fashion-mnist), cifar10 / cifar100 (binary batches under root), or
    /// synthetic (seeded random images of the model's input size: benchmarks).</summary>
    public string Dataset { get; init; } = "fashion-mnist";
    /// <summary>Images of the synthetic dataset.</summary>
    public int SyntheticCount { get; init; } = 256;
    public string? Root { get; init; }
    public IReadOnlyList<int>? Classes { get; init; }
    public int? MaxPerClass { get; init; }
    public bool Augment { get; init; } = true;
    /// <summary>With <see cref="Augment"/>: RandAugment (2 ops, magnitude 9, std 0.5); off for short schedules on small data.</summary>
    public bool RandAugment { get; init; } = true;
    /// <summary>With <see cref="Augment"/>: RandomErasing (p 0.25).</summary>
    public bool RandomErasing { get; init; } = true;
    /// <summary>With <see cref="Augment"/>: the RandomResizedCrop's smallest area fraction; null = the dataset preset's.</summary>
    public double? CropMinScale { get; init; }

    /// <summary>The dataset's augmentation preset with this spec's switches applied.</summary>
    public Jetpack.Model.Data.Augment.AugmentOptions Apply(Jetpack.Model.Data.Augment.AugmentOptions preset) => preset with
    {
        RandAugment = RandAugment ? preset.RandAugment : null,
        Erasing = RandomErasing ? preset.Erasing : null,
        Crop = CropMinScale is { } s && preset.Crop is { } c ? c with { MinScale = s } : preset.Crop,
    };
}

/// <summary>Where a scattered training checkpoint stands (its manifest's step, optimizer steps, data position) and where it came from.</summary>
public sealed record ScatteredResume(long Step, long OptimizerSteps, Jetpack.Model.Checkpoints.DataPosition Data, string Source);

/// <summary>
/// A training job as StartJob carries it (JSON, snake_case): which model (a registered variant, or
/// an inline spec for models outside the registry), its initial checkpoint, the data and the recipe,
/// and where the topology-free checkpoints go. Every rank gets the same spec.
/// </summary>
public sealed record WorkerJobSpec
{
    public string Model { get; init; } = "";
    /// <summary>A full <see cref="ModelSpec"/> as JSON (ModelSpec.Json); overrides <see cref="Model"/>.</summary>
    public string? ModelSpecJson { get; init; }
    /// <summary>A model checkpoint (full, unsharded) every rank starts from; null = the seeded initialisation.</summary>
    public string? Init { get; init; }
    /// <summary>Start from the tensors LoadShard delivered to each rank (the coordinator's scatter) instead of init/seed.</summary>
    public bool InitFromLoadedShard { get; init; }
    /// <summary>Resume from a training checkpoint the coordinator scattered with LoadShard (this rank's
    /// <c>p.</c>/<c>m.</c>/<c>v.</c> tensors, re-sliced for this world): the checkpoint's step, optimizer step count and data position.</summary>
    public ScatteredResume? ResumeFromLoadedShard { get; init; }
    public JobDataSpec Data { get; init; } = new();
    public TrainerOptions Recipe { get; init; } = new();
    /// <summary>Topology-free checkpoint directory (shared by the ranks); null = none.</summary>
    public string? CheckpointDir { get; init; }
    public int CheckpointEvery { get; init; } = 200;
    public string Device { get; init; } = "cpu";

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses and validates; errors name the field.</summary>
    public static WorkerJobSpec Parse(string json)
    {
        WorkerJobSpec spec;
        try { spec = JsonSerializer.Deserialize<WorkerJobSpec>(json, Json) ?? throw new ArgumentException("job spec: empty"); }
        catch (JsonException e) { throw new ArgumentException($"job spec: {e.Message}", e); }
        if (spec.ModelSpecJson is null && string.IsNullOrEmpty(spec.Model)) throw new ArgumentException("job spec: model: a variant name or model_spec_json is required");
        if (spec.CheckpointEvery < 1) throw new ArgumentException($"job spec: checkpoint_every must be ≥ 1, got {spec.CheckpointEvery}");
        if (spec.InitFromLoadedShard && spec.Init is not null) throw new ArgumentException("job spec: init and init_from_loaded_shard exclude each other");
        if (spec.ResumeFromLoadedShard is not null && (spec.InitFromLoadedShard || spec.Init is not null))
            throw new ArgumentException("job spec: resume_from_loaded_shard excludes init and init_from_loaded_shard");
        if (spec.Init is not null && !File.Exists(spec.Init)) throw new ArgumentException($"job spec: init: checkpoint not found: {spec.Init}");
        try { spec.Recipe.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"job spec: recipe: {e.Message}", e); }
        return spec;
    }

    public ModelSpec ResolveModel()
    {
        if (ModelSpecJson is null) return ModelRegistry.Get(Model);
        try
        {
            return JsonSerializer.Deserialize<ModelSpec>(ModelSpecJson, ModelSpec.Json) ?? throw new ArgumentException("job spec: model_spec_json: empty");
        }
        catch (JsonException e) { throw new ArgumentException($"job spec: model_spec_json: {e.Message}", e); }
    }
}
