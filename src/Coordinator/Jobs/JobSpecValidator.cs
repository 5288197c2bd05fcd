using System.Text.RegularExpressions;
using Jetpack.Model.Recycling;
using Jetpack.Model.Registry;

namespace Jetpack.Coordinator.Jobs;

/// <summary>
/// Checks a parsed job spec; the first problem throws a <see cref="JobSpecException"/> naming the
/// source and the field. Runs in the CLI before sending (good errors early) and again in the
/// coordinator (DESIGN.md "Trust boundaries": every job spec read is validated).
/// </summary>
public static partial class JobSpecValidator
{
    public const int MaxWorkers = 1024;

    public static void Validate(JobSpec spec, string source)
    {
        void Check(bool ok, string field, string problem) { if (!ok) throw new JobSpecException(source, field, problem); }

        Check(spec.Name.Length > 0, "name", "is required");
        Check(NamePattern().IsMatch(spec.Name), "name", $"must be 1–63 lowercase letters, digits or '-', starting and ending with a letter or digit, got '{spec.Name}'");
        Check(ModelRegistry.Names.Contains(spec.Model), "model", $"unknown model variant '{spec.Model}' (known: {string.Join(", ", ModelRegistry.Names)})");
        Check(spec.Workers is >= 1 and <= MaxWorkers, "workers", $"must be in 1..{MaxWorkers}, got {spec.Workers}");

        var r = spec.Recycle;
        Check(r.From.Length > 0, "recycle.from", "is required (the predecessor checkpoint)");
        Check(File.Exists(r.From), "recycle.from", $"checkpoint not found: {r.From}");
        Check(r.Target is null || File.Exists(r.Target), "recycle.target", $"checkpoint not found: {r.Target}");
        Check(r.Stats is null || File.Exists(r.Stats), "recycle.stats", $"statistics file not found: {r.Stats}");
        Check(r.ProfileImages is null || Directory.Exists(r.ProfileImages), "recycle.profile_images", $"directory not found: {r.ProfileImages}");
        foreach (var (field, variant) in new[] { ("recycle.from_variant", r.FromVariant), ("recycle.target_variant", r.TargetVariant) })
            Check(variant is null || ModelRegistry.Names.Contains(variant), field, $"unknown model variant '{variant}'");
        RecycleMethod method = default;
        try { method = RecycleOptions.ParseMethod(r.Method); }
        catch (ArgumentException e) { Check(false, "recycle.method", e.Message); }
        Check(r.DenseFrom is "target" or "predecessor", "recycle.dense_from", $"must be 'target' or 'predecessor', got '{r.DenseFrom}'");
        Check(r.GraphParts >= 2, "recycle.graph_parts", $"must be ≥ 2, got {r.GraphParts}");
        Check(r.ProfileCount >= 1, "recycle.profile_count", $"must be ≥ 1, got {r.ProfileCount}");
        bool profiles = r.ProfileFashionMnist || r.ProfileImages is not null;
        Check(!(r.ProfileFashionMnist && r.ProfileImages is not null), "recycle.profile_images", "give either profile_images or profile_fashion_mnist, not both");
        Check(!(profiles && r.Stats is not null), "recycle.stats", "give either stats or a profiling source, not both");
        Check(!new RecycleOptions { Method = method }.NeedsStatistics || profiles || r.Stats is not null, "recycle.stats",
              $"method {r.Method} needs activation statistics: give stats, profile_fashion_mnist or profile_images");
        Check(r.FromVariant is not null || RecyclingRecipes.For(spec.Model) is not null, "recycle.from_variant", $"is required: there is no default predecessor for {spec.Model}");

        var t = spec.Recipe;
        Check(t.Steps >= 1, "recipe.steps", $"must be ≥ 1, got {t.Steps}");
        Check(t.GlobalBatch >= spec.Workers, "recipe.global_batch", $"must be ≥ workers ({spec.Workers}) so that every worker draws images, got {t.GlobalBatch}");
        Check(t.Accumulation >= 1 && t.GlobalBatch % t.Accumulation == 0, "recipe.accumulation", $"must divide global_batch {t.GlobalBatch}, got {t.Accumulation}");
        Check(t.LearningRate > 0, "recipe.learning_rate", $"must be > 0, got {t.LearningRate}");
        Check(t.WeightDecay >= 0, "recipe.weight_decay", $"must be ≥ 0, got {t.WeightDecay}");
        Check(t.LayerDecay is > 0 and <= 1, "recipe.layer_decay", $"must be in (0, 1], got {t.LayerDecay}");
        Check(t.WarmupSteps >= 0, "recipe.warmup_steps", $"must be ≥ 0, got {t.WarmupSteps}");
        Check(t.LabelSmoothing is >= 0 and < 1, "recipe.label_smoothing", $"must be in [0, 1), got {t.LabelSmoothing}");
        Check(spec.EvalEvery >= 1, "eval_every", $"must be ≥ 1, got {spec.EvalEvery}");
        Check(spec.CheckpointEvery >= 1, "checkpoint_every", $"must be ≥ 1, got {spec.CheckpointEvery}");
        var d = spec.Data;
        Check(d.Dataset is "fashion-mnist" or "cifar10" or "cifar100", "data.dataset", $"must be fashion-mnist, cifar10 or cifar100, got '{d.Dataset}'");
        Check(d.Dataset == "fashion-mnist" || d.Root is not null, "data.root", "is required for CIFAR");
        // the syntax only: whether CUDA is there is the workers' business (the coordinator needs no GPU)
        Check(spec.Device is null || DevicePattern().IsMatch(spec.Device), "device", $"must be cpu, cuda or cuda:N (or left out: each worker's own default), got '{spec.Device}'");
    }

    [GeneratedRegex("^(cpu|cuda(:[0-9]+)?)$")]
    private static partial Regex DevicePattern();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    private static partial Regex NamePattern();
}
