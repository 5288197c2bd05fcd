using System.CommandLine;
using System.Diagnostics;
using System.Security.Cryptography;
using Spectre.Console;
using TorchSharp;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Models;
using Jetpack.Model.Recycling;
using Jetpack.Model.Recycling.Graph;
using Jetpack.Model.Registry;
using Jetpack.Model.Torch;

namespace Jetpack.Coordinator.Cli;

/// <summary>
/// <c>jetpack recycle</c>: a dense predecessor (experts) + a target-width dense checkpoint (the rest)
/// → an MoE checkpoint, a JSON report and the index sets (spec §5).
/// </summary>
public static class RecycleCommand
{
    static readonly Option<string> From = new("--from") { Description = "predecessor checkpoint (.safetensors or .pth/.pt; timm names, model./module. prefixes allowed): the experts' source", Required = true };
    static readonly Option<string?> FromVariant = new("--from-variant") { Description = "predecessor architecture (registry name); default from --variant (v_jetmoe_t → vit_small_patch16_224)" };
    static readonly Option<string?> Target = new("--target") { Description = "target-width dense checkpoint: every non-expert weight (spec §5.6)" };
    static readonly Option<string?> TargetVariant = new("--target-variant") { Description = "target architecture; default from --variant (v_jetmoe_t → vit_tiny_patch16_224)" };
    static readonly Option<string> Variant = new("--variant") { Description = "the MoE successor to build (registry name)", DefaultValueFactory = _ => "v_jetmoe_t" };
    static readonly Option<string> Method = new("--method") { Description = "importance-l2 (default), importance-l1, importance-count, random, uniform, graph, sparse-upcycling", DefaultValueFactory = _ => "importance-l2" };
    static readonly Option<string> DenseFrom = new("--dense-from") { Description = "non-expert weights from the 'target' checkpoint (released code) or selected from the 'predecessor' (paper text, spec §5.7)", DefaultValueFactory = _ => "target" };
    static readonly Option<string?> Stats = new("--stats") { Description = "activation statistics from `jetpack profile` (skips profiling)" };
    static readonly Option<string?> SaveStats = new("--save-stats") { Description = "also save the statistics this run profiled" };
    static readonly Option<long> Seed = new("--seed") { Description = "sampling seed (spec: 3407)", DefaultValueFactory = _ => 3407 };
    static readonly Option<int> GraphParts = new("--graph-parts") { Description = "METIS parts for --method graph", DefaultValueFactory = _ => 32 };
    static readonly Option<string> Out = new("--out") { Description = "the MoE checkpoint to write (.safetensors)", Required = true };
    static readonly Option<string?> Report = new("--report") { Description = "JSON report (default: <out>.report.json)" };
    static readonly Option<string?> Indices = new("--indices") { Description = "index sets per layer and expert (default: <out>.indices.safetensors)" };

    public static Command Create()
    {
        var cmd = new Command("recycle", "Checkpoint recycling (MoE Jetpack §5): sample the experts of an MoE from a dense predecessor's MLPs by activation importance, take every other weight from a target-width dense checkpoint, and write the MoE checkpoint, a JSON report and the index sets.")
        {
            From, FromVariant, Target, TargetVariant, Variant, Method, DenseFrom, Stats, SaveStats, Seed, GraphParts, Out, Report, Indices,
            CommonOptions.Device, CommonOptions.Threads,
        };
        foreach (var o in ProfileData.All) cmd.Add(o);
        cmd.SetAction(Run);
        return cmd;
    }

    static int Run(ParseResult r)
    {
        CommonOptions.ApplyThreads(r.GetValue(CommonOptions.Threads));
        var device = Devices.Parse(r.GetValue(CommonOptions.Device)!);
        var successor = ModelRegistry.Get(r.GetValue(Variant)!);
        var recipe = RecyclingRecipes.For(successor.Variant);
        var predSpec = ModelRegistry.Get(r.GetValue(FromVariant) ?? recipe?.Predecessor
            ?? throw new ArgumentException($"--from-variant is required: there is no default predecessor for {successor.Variant}"));
        var options = new RecycleOptions
        {
            Method = RecycleOptions.ParseMethod(r.GetValue(Method)!),
            DenseFrom = r.GetValue(DenseFrom) switch
            {
                "target" => DenseSource.Target, "predecessor" => DenseSource.Predecessor,
                var x => throw new ArgumentException($"--dense-from must be 'target' or 'predecessor', not '{x}'"),
            },
            Seed = r.GetValue(Seed), GraphParts = r.GetValue(GraphParts),
            Partitioner = (coact, parts, seed) => MetisPartitioner.PartGraphKway(CoActivationGraph.FromMatrix(coact), parts, (int)seed),
        };
        string outPath = r.GetValue(Out)!;
        var timings = new Dictionary<string, double>();
        var clock = Stopwatch.StartNew();
        double Lap() { double t = clock.Elapsed.TotalSeconds; clock.Restart(); return t; }

        AnsiConsole.MarkupLine($"recycling [bold]{successor.Variant}[/] from [bold]{predSpec.Variant}[/] ({RecycleOptions.Name(options.Method)}, seed {options.Seed})");
        using var pred = DenseCheckpoint.Load(r.GetValue(From)!, predSpec);
        DenseCheckpoint? target = null;
        if (r.GetValue(Target) is { } targetPath)
        {
            var targetSpec = ModelRegistry.Get(r.GetValue(TargetVariant) ?? recipe?.Target
                ?? throw new ArgumentException($"--target-variant is required: there is no default target for {successor.Variant}"));
            target = DenseCheckpoint.Load(targetPath, targetSpec);
        }
        timings["load"] = Lap();

        using var stats = LoadOrProfile(r, successor, predSpec, pred, device, options);
        timings["profile"] = Lap();

        using var result = CheckpointRecycler.Recycle(successor, predSpec, pred.Tensors, target?.Tensors, stats, options);
        timings["recycle"] = Lap();

        // Each source hashed once (ViT-S is ~90 MB): for the checkpoint's metadata and the report.
        var predSource = new SourceFile(pred.Path, predSpec.Variant, Sha256(pred.Path));
        var targetSource = target is null ? null : new SourceFile(target.Path, target.Spec.Variant, Sha256(target.Path));
        var metadata = new Dictionary<string, string>
        {
            ["recycle.method"] = RecycleOptions.Name(options.Method), ["recycle.seed"] = options.Seed.ToString(),
            ["recycle.dense_from"] = options.DenseFrom.ToString().ToLowerInvariant(),
            ["recycle.predecessor"] = $"{predSource.Variant}:{predSource.Sha256}",
        };
        if (targetSource is not null) metadata["recycle.target"] = $"{targetSource.Variant}:{targetSource.Sha256}";
        ModelCheckpoint.Save(outPath, successor, result.Model, metadata);
        string indicesPath = r.GetValue(Indices) ?? Path.ChangeExtension(outPath, ".indices.safetensors");
        RecyclingReport.ExportIndices(result, indicesPath);
        timings["save"] = Lap();

        var report = new RecyclingReport
        {
            Successor = successor.Variant, Method = RecycleOptions.Name(options.Method), Seed = options.Seed,
            DenseFrom = options.DenseFrom.ToString().ToLowerInvariant(),
            Predecessor = predSource,
            Target = targetSource,
            Statistics = r.GetValue(Stats), ProfiledImages = stats?.Images,
            Layers = RecyclingReport.Coverage(result), ProvenanceCounts = RecyclingReport.CountProvenance(result),
            FreshKeys = result.Provenance.Where(p => p.Value == Provenance.Fresh).Select(p => p.Key).ToList(),
            UnusedTargetKeys = result.UnusedTargetKeys, IgnoredKeys = [.. pred.Ignored, .. target?.Ignored ?? []],
            IndicesFile = indicesPath, TimingsSeconds = timings,
        };
        string reportPath = r.GetValue(Report) ?? Path.ChangeExtension(outPath, ".report.json");
        report.Save(reportPath);
        target?.Dispose();
        PrintSummary(report, outPath, reportPath);
        return 0;
    }

    static ActivationStats? LoadOrProfile(ParseResult r, ModelSpec successor, ModelSpec predSpec, DenseCheckpoint pred, TorchSharp.torch.Device device, RecycleOptions options)
    {
        if (r.GetValue(Stats) is { } statsPath)
        {
            if (ProfileData.Requested(r)) throw new ArgumentException("give either --stats or profiling images, not both");
            return ActivationStats.Load(statsPath);
        }
        if (!ProfileData.Requested(r))
        {
            if (options.NeedsStatistics)
                throw new ArgumentException($"--method {RecycleOptions.Name(options.Method)} needs activation statistics: give --stats FILE, --profile-images DIR or --profile-fashion-mnist");
            return null;
        }
        var coact = options.Method == RecycleMethod.Graph || r.GetValue(ProfileData.CoActivation)
            ? successor.MoeLayers().Select(l => $"{l.Prefix}.act").ToHashSet() : null;
        // Collect what this recipe reads (each statistic is a pass over every activation): the method's
        // statistic, L2 for graph channels, attention inputs only for paper-literal dense selection.
        var kinds = options.Statistic switch { ImportanceStat.L1 => StatKinds.L1, ImportanceStat.ActivationCount => StatKinds.ActivationCount, _ => StatKinds.L2 };
        if (options.Method == RecycleMethod.Graph) kinds |= StatKinds.L2;
        var stats = ProfileData.Run(r, predSpec, pred, device, options.Seed, coact, kinds, options.DenseFrom == DenseSource.Predecessor);
        if (r.GetValue(SaveStats) is { } save) stats.Save(save);
        return stats;
    }

    static void PrintSummary(RecyclingReport report, string outPath, string reportPath)
    {
        var table = new Table().AddColumns("layer", "core", "univ", "hidden", "channels", "hidden mass", "channel mass")
            .Caption("units per expert; importance mass its selection covers: mean (min–max) over experts");
        static string Mass(MassSummary? m) => m is null ? "–" : $"{100 * m.Mean:F1}% ({100 * m.Min:F1}–{100 * m.Max:F1})";
        foreach (var l in report.Layers)
            table.AddRow(l.Layer, $"{l.CoreExperts}", $"{l.UniversalExperts}", $"{l.HiddenPerExpert}", $"{l.ChannelsPerExpert}", Mass(l.HiddenMass), Mass(l.ChannelMass));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"tensors: {string.Join(", ", report.ProvenanceCounts.Select(kv => $"{kv.Value} {kv.Key}"))}; unused target keys: {report.UnusedTargetKeys.Count}; ignored: {report.IgnoredKeys.Count}");
        AnsiConsole.MarkupLine($"time: {string.Join(", ", report.TimingsSeconds.Select(kv => $"{kv.Key} {kv.Value:F1} s"))}");
        AnsiConsole.MarkupLine($"written: [bold]{Markup.Escape(outPath)}[/], {Markup.Escape(reportPath)}, {Markup.Escape(report.IndicesFile ?? "")}");
    }

    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
