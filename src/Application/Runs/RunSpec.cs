using Jetpack.Model.Models;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;

namespace Jetpack.Application.Runs;

/// <summary>
/// The one config of a training run: what `jetpack train --config` reads, what a submitted job
/// adds its job fields to (Coordinator's JobSpec), and what every worker receives (WorkerJobSpec).
/// YAML or JSON, snake_case; unknown fields are errors; every error names the file and the field.
/// </summary>
public record RunSpec
{
    /// <summary>`jetpack train`'s output directory when the config gives none.</summary>
    public const string DefaultOut = "results/train";
    /// <summary>The fields, for "must be a mapping of fields (…)" errors.</summary>
    public const string FieldsHint = "model, init, data, recipe, eval_every, checkpoint_every, out, deterministic, parallel";

    /// <summary>The model to train: a registry name, or a mapping (<see cref="ModelRequest"/>: base variant + expert
    /// configuration, num_classes, image_size). A .yaml/.json file name is inlined by the spec reader before this is used.</summary>
    [System.Text.Json.Serialization.JsonConverter(typeof(ModelRequestJsonConverter))]
    public ModelRequest Model { get; init; } = "v_jetmoe_fmnist";
    /// <summary>A model checkpoint (e.g. from `jetpack recycle`) to start from; null = from scratch.</summary>
    public string? Init { get; init; }
    public RunData Data { get; init; } = new();
    /// <summary>The recipe (Jetpack.Model.Training.TrainerOptions, snake_case); "mixup": {} turns Mixup/CutMix on with its defaults.</summary>
    public TrainerOptions Recipe { get; init; } = new();
    /// <summary>Evaluate every this many steps on data.eval_limit images (and at the last step on the whole split).</summary>
    public int EvalEvery { get; init; } = 100;
    public int CheckpointEvery { get; init; } = 200;
    /// <summary>Output directory; null = the command's default (<see cref="DefaultOut"/>; a job: &lt;data dir&gt;/jobs/&lt;job id&gt;).</summary>
    public string? Out { get; init; }
    /// <summary>Dropout, DropPath and routing noise off: the run then equals the single-process run on
    /// any number of workers, also across a recovery onto fewer workers (their random streams are
    /// per rank). For comparisons and tests; training quality wants them on (default).</summary>
    public bool Deterministic { get; init; }
    /// <summary>The parallel layout on several workers: <c>parallel: {expert_parallel: G}</c>, world = G × R.</summary>
    public RunParallel Parallel { get; init; } = new();
    /// <summary>The torch device every rank trains on (cpu, cuda, cuda:N); null: the default of the
    /// process that runs it (`jetpack train`'s --device, or cpu on a worker). Declared here only.</summary>
    public string? Device { get; init; }

    /// <summary>The device a worker trains on: <see cref="Device"/>, else cpu.</summary>
    public const string WorkerDefaultDevice = "cpu";

    /// <summary>The layout of this run on <paramref name="world"/> ranks; a G that does not divide it fails naming parallel.expert_parallel.</summary>
    public Jetpack.Model.Distributed.ParallelLayout Layout(int world)
    {
        if (Parallel.ExpertParallel is { } g && (g < 1 || world % g != 0))
            throw new ArgumentException($"parallel.expert_parallel: {g} must be ≥ 1 and divide the number of workers {world}");
        return Jetpack.Model.Distributed.ParallelLayout.Of(world, Parallel.ExpertParallel);
    }

    /// <summary>Whether <see cref="Model"/> must name a registered variant (a worker's spec may carry the model inline instead).</summary>
    protected virtual bool NamesRegisteredModel => true;

    /// <summary>The model the run trains: the request resolved (num_classes: auto = the data's classes), its stochastic layers off when <see cref="Deterministic"/>.</summary>
    public ModelSpec ResolveModel()
    {
        var spec = ModelRegistry.Resolve(Model, Data.TrainedClassCount());
        return Deterministic ? WithoutRandomness(spec) : spec;
    }

    /// <summary>The request with num_classes: auto replaced by the data's class count (what a recycling child process is given).</summary>
    public ModelRequest ResolvedModelRequest() =>
        Model.AutoClasses && Data.TrainedClassCount() is { } n ? Model with { NumClasses = n.ToString(System.Globalization.CultureInfo.InvariantCulture) } : Model;

    /// <summary>Dropout, DropPath (blocks and MoE) and routing noise set to 0 (spec §3.6 noise, §3.2 step 9 DropPath).</summary>
    public static ModelSpec WithoutRandomness(ModelSpec spec)
    {
        static MoeConfig? Quiet(MoeConfig? m) => m is null ? null : m with { ExpertDropout = 0, MoeDropPathRate = 0, NoiseStd = 0 };
        return spec with
        {
            Vit = spec.Vit is { } v ? v with { DropPathRate = 0, DropRate = 0, Moe = Quiet(v.Moe) } : null,
            ConvNeXt = spec.ConvNeXt is { } c ? c with { DropPathRate = 0, StageMoe = c.StageMoe.Select(Quiet).ToArray() } : null,
        };
    }

    /// <summary>Checks the run's fields; the first problem throws a <see cref="RunSpecException"/> naming <paramref name="source"/> and the field.</summary>
    public void Validate(string source)
    {
        void Check(bool ok, string field, string problem) { if (!ok) throw new RunSpecException(source, field, problem); }

        if (NamesRegisteredModel)
        {
            try { ResolveModel(); }
            catch (ModelRequestException e) { Check(false, e.Field.Length == 0 || Model.IsName ? "model" : $"model.{e.Field}", e.Problem); }
        }
        if (Init is not null && Jetpack.Model.Checkpoints.CheckpointFile.Problem(Init) is { } initProblem) Check(false, "init", initProblem);
        var t = Recipe;
        Check(t.Steps >= 1, "recipe.steps", $"must be ≥ 1, got {t.Steps}");
        Check(t.GlobalBatch >= 1, "recipe.global_batch", $"must be ≥ 1, got {t.GlobalBatch}");
        Check(t.Accumulation >= 1 && t.GlobalBatch % t.Accumulation == 0, "recipe.accumulation", $"must divide global_batch {t.GlobalBatch}, got {t.Accumulation}");
        Check(t.LearningRate > 0, "recipe.learning_rate", $"must be > 0, got {t.LearningRate}");
        Check(t.WeightDecay >= 0, "recipe.weight_decay", $"must be ≥ 0, got {t.WeightDecay}");
        Check(t.LayerDecay is > 0 and <= 1, "recipe.layer_decay", $"must be in (0, 1], got {t.LayerDecay}");
        Check(t.WarmupSteps >= 0, "recipe.warmup_steps", $"must be ≥ 0, got {t.WarmupSteps}");
        Check(t.LabelSmoothing is >= 0 and < 1, "recipe.label_smoothing", $"must be in [0, 1), got {t.LabelSmoothing}");
        Check(EvalEvery >= 1, "eval_every", $"must be ≥ 1, got {EvalEvery}");
        Check(CheckpointEvery >= 1, "checkpoint_every", $"must be ≥ 1, got {CheckpointEvery}");
        Check(Parallel is null || Parallel.ExpertParallel is null or >= 1, "parallel.expert_parallel", $"must be ≥ 1, got {Parallel?.ExpertParallel}");
        var d = Data;
        Check(RunData.Datasets.Contains(d.Dataset), "data.dataset", $"must be {string.Join(", ", RunData.Datasets)}, got '{d.Dataset}'");
        Check(d.Dataset is not ("cifar10" or "cifar100") || d.Root is not null, "data.root", "is required for CIFAR");
        Check(d.CropMinScale is null or (> 0 and <= 1), "data.crop_min_scale", $"must be in (0, 1], got {d.CropMinScale}");
        Check(d.EvalLimit is null or >= 1, "data.eval_limit", $"must be ≥ 1, got {d.EvalLimit}");
        Check(d.MaxPerClass is null or >= 1, "data.max_per_class", $"must be ≥ 1, got {d.MaxPerClass}");
        Check(d.SyntheticCount >= 1, "data.synthetic_count", $"must be ≥ 1, got {d.SyntheticCount}");
        IReadOnlyList<int>? classes = null;
        try { classes = ClassList.Parse(d.Classes, "data.classes", ClassList.ClassCount(d.Dataset)); }
        catch (ArgumentException e) { Check(false, "data.classes", e.Message["data.classes: ".Length..]); }
        Check(!d.IsImageFiles || d.Root is not null, "data.root", $"is required for {d.Dataset} (the folder holding {(d.Dataset == "shards" ? "train-*.tar, val-*.tar and classes.txt" : "train/ and val/")})");
        Check(d.ImageSize is null or (>= 8 and <= 4096), "data.image_size", $"must be in 8..4096, got {d.ImageSize}");
        Check(d.ImageSize is null or 28 || d.Dataset != "fashion-mnist", "data.image_size", $"Fashion-MNIST is used at 28, got {d.ImageSize}");
        Check(d.Workers is >= 1 and <= 256, "data.workers", $"must be in 1..256, got {d.Workers}");
        Check(d.Prefetch is >= 1 and <= 64, "data.prefetch", $"must be in 1..64, got {d.Prefetch}");
        Check(d.ShuffleBuffer is >= 1 and <= Jetpack.Model.Data.ShardStream.MaxBufferSize, "data.shuffle_buffer", $"must be in 1..{Jetpack.Model.Data.ShardStream.MaxBufferSize}, got {d.ShuffleBuffer}");
        Check(d.MaxBadFraction is >= 0 and < 1, "data.max_bad_fraction", $"must be in [0, 1), got {d.MaxBadFraction}");
        if (NamesRegisteredModel) CheckFit(source, ResolveModel(), classes?.Count);
    }

    /// <summary>
    /// The submit-time fit of model and data: the pipeline's image side and channels must be the model's
    /// input, and the data's classes must fit its head (an image-file tree is counted when its root is
    /// reachable from here). The errors name the field to change.
    /// </summary>
    public void CheckFit(string source, ModelSpec model, int? selectedClasses = null)
    {
        var d = Data;
        var shape = ModelRegistry.ImageShape(model);                                  // [c, h, w]
        int head = model.Vit?.NumClasses ?? model.ConvNeXt!.NumClasses;
        var (size, channels) = d.OutputShape(model);
        if (channels != shape[0])
            throw new RunSpecException(source, "data.dataset", $"{d.Dataset} gives {channels}-channel images, model {model.Variant} takes {shape[0]} channels");
        if (size != shape[1])
            throw new RunSpecException(source, "data.image_size",
                $"the data pipeline gives {size}×{size} images ({(d.ImageSize is null ? $"{d.Dataset}'s own size" : "data.image_size")}), model {model.Variant} takes {shape[1]}×{shape[2]}: set data.image_size: {shape[1]}");
        int? classes = d.Dataset switch
        {
            "fashion-mnist" or "cifar10" or "cifar100" => selectedClasses ?? ClassList.ClassCount(d.Dataset),
            "imagefolder" or "shards" => d.EncodedClassCount(),
            _ => null,
        };
        if (classes > head)
            throw new RunSpecException(source, "model", $"model {model.Variant} has a {head}-class head, the data ({d.Dataset}) has {classes} classes");
    }
}
