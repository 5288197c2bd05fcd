using System.CommandLine;
using Spectre.Console;
using Jetpack.Application.Recycling;
using Jetpack.Model.Recycling;
using Jetpack.Model.Recycling.Graph;
using Jetpack.Model.Torch;
using Jetpack.Cli.CommandLine;
using Jetpack.Coordinator.Jobs;
using Jetpack.Coordinator.Recycling;

namespace Jetpack.Cli.Commands;

/// <summary>
/// <c>jetpack recycle</c>: a dense predecessor (experts) + a target-width dense checkpoint (the rest)
/// → an MoE checkpoint, a JSON report and the index sets (spec §5). A thin edge: options, or the
/// coordinator's task file (<see cref="RecycleTask"/>), → one <see cref="RecycleSpec"/> (the recipe a
/// job spec's <c>recycle:</c> holds) → a <see cref="RecycleJob"/> for <see cref="RecyclePipeline"/>.
/// </summary>
public static class RecycleCommand
{
    static readonly Option<string?> From = new("--from") { Description = "predecessor checkpoint (.safetensors or .pth/.pt; timm names, model./module. prefixes allowed): the experts' source (required unless --task)" };
    static readonly Option<string?> FromVariant = new("--from-variant") { Description = "predecessor architecture (registry name); default from --model (v_jetmoe_t → vit_small_patch16_224)" };
    static readonly Option<string?> Target = new("--target") { Description = "target-width dense checkpoint: every non-expert weight (spec §5.6)" };
    static readonly Option<string?> TargetVariant = new("--target-variant") { Description = "target architecture; default from --model (v_jetmoe_t → vit_tiny_patch16_224)" };
    static readonly Option<string> Model = new("--model", "--variant") { Description = "the MoE successor to build: " + ModelArgument.Help, DefaultValueFactory = _ => "v_jetmoe_t" };
    static readonly Option<string> Method = new("--method") { Description = "importance-l2 (default), importance-l1, importance-count, random, uniform, graph, sparse-upcycling", DefaultValueFactory = _ => "importance-l2" };
    static readonly Option<string> DenseFrom = new("--dense-from") { Description = "non-expert weights from the 'target' checkpoint (released code) or selected from the 'predecessor' (paper text, spec §5.7)", DefaultValueFactory = _ => "target" };
    static readonly Option<string?> Stats = new("--stats") { Description = "activation statistics from `jetpack profile` (skips profiling)" };
    static readonly Option<string?> SaveStats = new("--save-stats") { Description = "also save the statistics this run profiled" };
    static readonly Option<long> Seed = new("--seed") { Description = "sampling seed (spec: 3407)", DefaultValueFactory = _ => 3407 };
    static readonly Option<int> GraphParts = new("--graph-parts") { Description = "METIS parts for --method graph", DefaultValueFactory = _ => 32 };
    static readonly Option<string?> Out = new("--out") { Description = "the MoE checkpoint to write (.safetensors) (required unless --task)" };
    static readonly Option<string?> TaskFile = new("--task") { Description = "the whole recipe as one JSON file: {model, recycle: {from, target, method, seed, ...: a job spec's recycle fields}, out, threads} (how the coordinator runs its recycle child); the other recipe options are then not given" };
    static readonly Option<string?> Report = new("--report") { Description = "JSON report (default: <out>.report.json)" };
    static readonly Option<string?> Indices = new("--indices") { Description = "index sets per layer and expert (default: <out>.indices.safetensors)" };

    public static Command Create()
    {
        var cmd = new Command("recycle", "Checkpoint recycling (MoE Jetpack §5): sample the experts of an MoE from a dense predecessor's MLPs by activation importance, take every other weight from a target-width dense checkpoint, and write the MoE checkpoint, a JSON report and the index sets.")
        {
            From, FromVariant, Target, TargetVariant, Model, Method, DenseFrom, Stats, SaveStats, Seed, GraphParts, Out, Report, Indices, TaskFile,
            CommonOptions.Device, CommonOptions.Threads,
        };
        foreach (var o in ProfileData.All) cmd.Add(o);
        cmd.SetAction(Run);
        return cmd;
    }

    static int Run(ParseResult r)
    {
        var (model, recipe, outPath, threads) = r.GetValue(TaskFile) is { } file ? FromTask(r, file) : FromOptions(r);
        CommonOptions.ApplyThreads(threads);
        var device = Devices.Parse(r.GetValue(CommonOptions.Device)!);
        var profile = new ProfileSource
        {
            Images = recipe.ProfileImages, FashionMnist = recipe.ProfileFashionMnist, Classes = recipe.ProfileClasses, Count = recipe.ProfileCount,
            Batch = r.GetValue(ProfileData.Batch), Workers = r.GetValue(ProfileData.Workers),
        };
        var job = new RecycleJob
        {
            Successor = ModelArgument.Parse(model), From = recipe.From, FromVariant = recipe.FromVariant,
            Target = recipe.Target, TargetVariant = recipe.TargetVariant,
            Options = new RecycleOptions
            {
                Method = RecycleOptions.ParseMethod(recipe.Method),
                DenseFrom = recipe.DenseFrom switch
                {
                    "target" => DenseSource.Target,
                    "predecessor" => DenseSource.Predecessor,
                    var x => throw new ArgumentException($"--dense-from must be 'target' or 'predecessor', not '{x}'"),
                },
                Seed = recipe.Seed, GraphParts = recipe.GraphParts,
                Partitioner = (coact, parts, seed) => MetisPartitioner.PartGraphKway(CoActivationGraph.FromMatrix(coact), parts, (int)seed),
            },
            Stats = recipe.Stats, SaveStats = r.GetValue(SaveStats), CoActivation = r.GetValue(ProfileData.CoActivation),
            Profiler = profile.Given
                ? p => ProfileData.Run(profile, p.Predecessor, p.Checkpoint, device, p.Seed, p.CoActivationSites, p.Kinds, p.AttentionInputs)
                : null,
            Out = outPath, Report = r.GetValue(Report), Indices = r.GetValue(Indices),
        };
        // Ctrl-C or SIGTERM stops at the next step and deletes the temp files (nothing half-written is left).
        using var signals = new SignalCancellation();
        try
        {
            var outcome = RecyclePipeline.Run(job, p => { if (p.Step == RecycleStep.Started) AnsiConsole.MarkupLine(Markup.Escape(p.Message)); }, signals.Token);
            PrintSummary(outcome.Report, outcome.Files);
            return 0;
        }
        catch (OperationCanceledException)
        {
            AnsiConsole.MarkupLine("[yellow]cancelled:[/] no output written");
            return Cancelled;
        }
    }

    /// <summary>The recipe from the command line's options.</summary>
    static (string Model, RecycleSpec Recipe, string Out, int Threads) FromOptions(ParseResult r)
    {
        string Required(Option<string?> o) => r.GetValue(o) ?? throw new ArgumentException($"{o.Name} is required (or give the whole recipe with --task FILE)");
        var recipe = new RecycleSpec
        {
            From = Required(From), FromVariant = r.GetValue(FromVariant), Target = r.GetValue(Target), TargetVariant = r.GetValue(TargetVariant),
            Method = r.GetValue(Method)!, DenseFrom = r.GetValue(DenseFrom)!, Seed = r.GetValue(Seed), GraphParts = r.GetValue(GraphParts), Stats = r.GetValue(Stats),
            ProfileImages = r.GetValue(ProfileData.Images), ProfileFashionMnist = r.GetValue(ProfileData.FashionMnist),
            ProfileClasses = r.GetValue(ProfileData.Classes), ProfileCount = r.GetValue(ProfileData.Count),
        };
        return (r.GetValue(Model)!, recipe, Required(Out), r.GetValue(CommonOptions.Threads));
    }

    /// <summary>The recipe from a task file; recipe options beside it would be ignored, so they are refused.</summary>
    static (string Model, RecycleSpec Recipe, string Out, int Threads) FromTask(ParseResult r, string file)
    {
        Option[] recipeOptions = [From, FromVariant, Target, TargetVariant, Method, DenseFrom, Stats, Seed, GraphParts, Out, ProfileData.Images, ProfileData.FashionMnist, ProfileData.Classes, ProfileData.Count];
        if (recipeOptions.FirstOrDefault(o => r.GetResult(o) is { Implicit: false }) is { } given)
            throw new ArgumentException($"--task {file} holds the whole recipe: {given.Name} cannot be given beside it");
        var task = RecycleTask.Read(file);
        return (task.Model, task.Recycle, task.Out, task.Threads);
    }

    /// <summary>128 + SIGINT, as a shell reports an interrupted command.</summary>
    const int Cancelled = 130;

    static void PrintSummary(RecyclingReport report, RecycleOutputs files)
    {
        var table = new Table().AddColumns("layer", "core", "univ", "hidden", "channels", "hidden mass", "channel mass")
            .Caption("units per expert; importance mass its selection covers: mean (min–max) over experts");
        static string Mass(MassSummary? m) => m is null ? "–" : $"{100 * m.Mean:F1}% ({100 * m.Min:F1}–{100 * m.Max:F1})";
        foreach (var l in report.Layers)
            table.AddRow(l.Layer, $"{l.CoreExperts}", $"{l.UniversalExperts}", $"{l.HiddenPerExpert}", $"{l.ChannelsPerExpert}", Mass(l.HiddenMass), Mass(l.ChannelMass));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"tensors: {string.Join(", ", report.ProvenanceCounts.Select(kv => $"{kv.Value} {kv.Key}"))}; unused target keys: {report.UnusedTargetKeys.Count}; ignored: {report.IgnoredKeys.Count}");
        AnsiConsole.MarkupLine($"time: {string.Join(", ", report.TimingsSeconds.Select(kv => $"{kv.Key} {kv.Value:F1} s"))}");
        AnsiConsole.MarkupLine($"written: [bold]{Markup.Escape(files.Model)}[/], {Markup.Escape(files.Report)}, {Markup.Escape(files.Indices)}");
    }
}
