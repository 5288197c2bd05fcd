using System.Text.RegularExpressions;
using Jetpack.Application.Runs;
using Jetpack.Model.Recycling;
using Jetpack.Model.Registry;

namespace Jetpack.Coordinator.Jobs;

/// <summary>
/// Checks a parsed job spec (its job fields here, its run's fields by <see cref="RunSpec.Validate"/>); the first problem throws a <see cref="RunSpecException"/> naming the
/// source and the field. Runs in the CLI before sending (good errors early) and again in the
/// coordinator (DESIGN.md "Trust boundaries": every job spec read is validated).
/// </summary>
public static partial class JobSpecValidator
{
    public const int MaxWorkers = 1024;

    /// <summary>Job ids follow the spec name's DNS-label-like pattern: they name grains, metric labels and
    /// the default output directory, so '/', '..' and long ids must never get that far (issue 12).</summary>
    public static bool IsJobId(string id) => NamePattern().IsMatch(id);

    /// <summary>Why <paramref name="id"/> is not a job id, for an error that quotes it (shortened: ids may be huge).</summary>
    public static string JobIdProblem(string id) => $"{NameRule}, got {Quote(id)}";

    const string NameRule = "must be 1–63 lowercase letters, digits or '-', starting and ending with a letter or digit";

    static string Quote(string text) => text.Length <= 70 ? $"'{text}'" : $"'{text[..64]}…' ({text.Length:N0} characters)";

    public static void Validate(JobSpec spec, string source)
    {
        void Check(bool ok, string field, string problem) { if (!ok) throw new RunSpecException(source, field, problem); }

        Check(spec.Name.Length > 0, "name", "is required");
        Check(NamePattern().IsMatch(spec.Name), "name", $"{NameRule}, got {Quote(spec.Name)}");
        Check(spec.Workers is >= 1 and <= MaxWorkers, "workers", $"must be in 1..{MaxWorkers}, got {spec.Workers}");
        // tar shards go to ranks i mod W: a reachable shard folder with fewer train shards than workers would leave a rank nothing
        if (spec.Data.Dataset == "shards" && spec.Data.Root is { } root && Jetpack.Model.Data.ShardDataset.ShardFiles(root, "train") is { Length: > 0 } shards)
            Check(shards.Length >= spec.Workers, "data.root",
                  $"{root} holds {shards.Length} train shard{(shards.Length == 1 ? "" : "s")} for {spec.Workers} workers (shard i goes to rank i mod {spec.Workers}): " +
                  $"pack with a smaller --shard-size for at least {spec.Workers} shards, or set workers: {shards.Length} or fewer");
        if (spec.Elastic is { } elastic)
        {
            Check(elastic.MinWorkers is not { } min || min >= 1 && min <= spec.Workers, "elastic.min_workers",
                  $"must be in 1..workers ({spec.Workers}), got {elastic.MinWorkers}");
            Check(elastic.MaxWorkers is not { } max || max >= spec.Workers && max <= MaxWorkers, "elastic.max_workers",
                  $"must be in workers ({spec.Workers})..{MaxWorkers}, got {elastic.MaxWorkers}");
            if (spec.MaxWorkers > spec.Workers && spec.Data.Dataset == "shards" && spec.Data.Root is { } elasticRoot
                && Jetpack.Model.Data.ShardDataset.ShardFiles(elasticRoot, "train") is { Length: > 0 } elasticShards)
                Check(elasticShards.Length >= spec.MaxWorkers, "elastic.max_workers",
                      $"{elasticRoot} holds {elasticShards.Length} train shards, fewer than max_workers {spec.MaxWorkers} (shard i goes to rank i mod the world): " +
                      $"set max_workers: {elasticShards.Length} or fewer, or pack more shards");
        }
        Check(spec.MaxRecoveries is >= 0 and <= 1000, "max_recoveries", $"must be in 0..1000, got {spec.MaxRecoveries}");
        Check(spec.RecoveryBackoffSeconds is >= 0 and <= JobSpec.MaxRecoveryBackoffSeconds, "recovery_backoff_seconds",
              $"must be in 0..{JobSpec.MaxRecoveryBackoffSeconds}, got {spec.RecoveryBackoffSeconds}");
        Check(spec.Init is null, "init", "a job starts from its recycled checkpoint (recycle.from): remove init");
        spec.Validate(source);                                           // the run's fields: model, data, recipe, cadences

        var r = spec.Recycle;
        Check(r.From.Length > 0, "recycle.from", "is required (the predecessor checkpoint)");
        if (r.From.Length > 0 && Jetpack.Model.Checkpoints.CheckpointFile.Problem(r.From) is { } fromProblem) Check(false, "recycle.from", fromProblem);
        if (r.Target is not null && Jetpack.Model.Checkpoints.CheckpointFile.Problem(r.Target) is { } targetProblem) Check(false, "recycle.target", targetProblem);
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
        Check(r.FromVariant is not null || RecyclingRecipes.For(spec.Model.Base) is not null, "recycle.from_variant", $"is required: there is no default predecessor for {spec.Model.Base}");

        // Parsed here, at submit, so a bad list fails now naming its field (never materialising a huge range).
        CheckClasses(r.ProfileClasses, "recycle.profile_classes", ClassList.ClassCount("fashion-mnist"), source);
        Check(spec.Parallel.ExpertParallel is null || (spec.Parallel.ExpertParallel >= 1 && spec.Workers % spec.Parallel.ExpertParallel == 0), "parallel.expert_parallel",
              $"must be ≥ 1 and divide workers ({spec.Workers}), got {spec.Parallel.ExpertParallel}");
        Check(spec.Recipe.GlobalBatch >= spec.Workers, "recipe.global_batch", $"must be ≥ workers ({spec.Workers}) so that every worker draws images, got {spec.Recipe.GlobalBatch}");
        Check(spec.Recipe.GlobalBatch >= spec.MaxWorkers, "elastic.max_workers", $"must be ≤ recipe.global_batch ({spec.Recipe.GlobalBatch}) so that every worker draws images, got {spec.MaxWorkers}");
        // the syntax only: whether CUDA is there is the workers' business (the coordinator needs no GPU)
        Check(spec.Device is null || DevicePattern().IsMatch(spec.Device), "device", $"must be cpu, cuda or cuda:N (or left out: each worker's own default), got '{spec.Device}'");
    }

    static void CheckClasses(string? classes, string field, int classCount, string source)
    {
        try { ClassList.Parse(classes, field, classCount); }
        catch (ArgumentException e) { throw new RunSpecException(source, field, e.Message.StartsWith(field + ": ", StringComparison.Ordinal) ? e.Message[(field.Length + 2)..] : e.Message); }
    }

    [GeneratedRegex(@"^(cpu|cuda(:[0-9]+)?)\z")]
    private static partial Regex DevicePattern();

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\z")] // \z, not $: "$" would accept a trailing newline
    private static partial Regex NamePattern();
}
