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

    /// <summary>The model to train (registry name).</summary>
    public string Model { get; init; } = "v_jetmoe_fmnist";
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

    /// <summary>The layout of this run on <paramref name="world"/> ranks; a G that does not divide it fails naming parallel.expert_parallel.</summary>
    public Jetpack.Model.Distributed.ParallelLayout Layout(int world)
    {
        if (Parallel.ExpertParallel is { } g && (g < 1 || world % g != 0))
            throw new ArgumentException($"parallel.expert_parallel: {g} must be ≥ 1 and divide the number of workers {world}");
        return Jetpack.Model.Distributed.ParallelLayout.Of(world, Parallel.ExpertParallel);
    }

    /// <summary>Whether <see cref="Model"/> must name a registered variant (a worker's spec may carry the model inline instead).</summary>
    protected virtual bool NamesRegisteredModel => true;

    /// <summary>The model the run trains: the registered variant, its stochastic layers off when <see cref="Deterministic"/>.</summary>
    public ModelSpec ResolveModel() => Deterministic ? WithoutRandomness(ModelRegistry.Get(Model)) : ModelRegistry.Get(Model);

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
            Check(ModelRegistry.Names.Contains(Model), "model", $"unknown model variant '{Model}' (known: {string.Join(", ", ModelRegistry.Names)})");
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
        try { ClassList.Parse(d.Classes, "data.classes", ClassList.ClassCount(d.Dataset)); }
        catch (ArgumentException e) { Check(false, "data.classes", e.Message["data.classes: ".Length..]); }
    }
}
