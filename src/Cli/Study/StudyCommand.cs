using Jetpack.Application.Runs;
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Application.Recycling;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Data;
using Jetpack.Model.Models;
using Jetpack.Model.Recycling;
using Jetpack.Model.Recycling.Graph;
using Jetpack.Model.Registry;
using Jetpack.Model.Torch;
using Jetpack.Cli.CommandLine;
using Jetpack.Cli.Runs;

namespace Jetpack.Cli.Study;

/// <summary>
/// <c>jetpack study</c>: the paper's claim reproduced on Fashion-MNIST in one command (issue 4 §4).
/// Upstream pre-training → profiling → recycling (every strategy) → equal-step downstream runs →
/// Table 1 / Table 3 in Markdown and a Fig. 5 plot. Every finished stage is kept on disk with the
/// config it was made with, so an interrupted study continues where it stopped.
/// </summary>
public static class StudyCommand
{
    static readonly Option<bool> Quick = new("--quick") { Description = "a few minutes: every run, far fewer steps and images (numbers are indicative only)" };
    static readonly Option<bool> Smoke = new("--smoke") { Description = "about a minute: every stage on tiny sizes, to check an installation (the numbers mean nothing)" };
    static readonly Option<string> Out = new("--out") { Description = "results folder (upstream/, init/, runs/, results.md, results.json, *.png)", DefaultValueFactory = _ => "results/study" };
    static readonly Option<bool> Fresh = new("--fresh") { Description = "redo every stage even where a finished one with the same config is on disk" };
    static readonly Option<string> Bf16 = new("--bf16")
    {
        Description = "the bf16-policy run (jetpack_bf16): auto = only where bf16 is hardware (a GPU, or a CPU with avx512_bf16 or amx_bf16; " +
                      "emulated bf16 is ~6x slower than fp32 and would take most of the study's time), on = always, off = never",
        DefaultValueFactory = _ => "auto",
    };
    static readonly Option<string[]> Only = new("--only")
    {
        Description = "downstream runs to do, in this order (ids: " + string.Join(", ", StudyPlan.Runs.Select(r => r.Id)) +
                      $"; {StudyPlan.Table4Id} = the paper's Table 4 grid, MoE in the last 2/4/6 blocks × ¼/½/all experts, or one of its ids t4_l{{L}}_e{{C}}); default the study's runs",
        AllowMultipleArgumentsPerToken = true,
    };
    static readonly Option<int> Seeds = new("--seeds")
    {
        Description = "repeat every downstream run with K seeds (data order, fresh-part init, recycling draw, profiling sample, noise) and report " +
                      "mean, standard deviation, 95 % t-intervals and paired differences; seed 1 is the one-seed study's (its stages are reused)",
        DefaultValueFactory = _ => 1,
    };
    static readonly Option<int> UpstreamSeeds = new("--upstream-seeds")
    {
        Description = "upstream pre-trainings to share among the seeds: 1 (default) = every seed starts from the same upstream checkpoints; " +
                      "K = each seed has its own upstream (K times the upstream time)",
        DefaultValueFactory = _ => 1,
    };

    public static Command Create()
    {
        var cmd = new Command("study", "Reproduce the paper's claim on Fashion-MNIST: pre-train a dense predecessor and a dense target on classes 0–4, recycle, fine-tune every method and recycling strategy for equal steps on 500 images per class of classes 5–9, and write Tables 1 and 3 and a Fig. 5 plot.")
        {
            Quick, Smoke, Out, Fresh, Bf16, Only, Seeds, UpstreamSeeds, CommonOptions.Device, CommonOptions.Threads,
        };
        cmd.SetAction(r => Run(r.GetValue(Smoke) ? StudyPlan.Smoke : r.GetValue(Quick) ? StudyPlan.Quick : StudyPlan.Full, r.GetValue(Out)!, r.GetValue(Fresh),
                               r.GetValue(Only), Devices.Parse(r.GetValue(CommonOptions.Device)!), r.GetValue(CommonOptions.Threads), r.GetValue(Bf16)!,
                               r.GetValue(Seeds), r.GetValue(UpstreamSeeds)));
        return cmd;
    }

    /// <summary>The runs `--only` names, in its order (<see cref="StudyPlan.Table4Id"/> expands to the grid); all of the study's without it.</summary>
    public static List<StudyRun> SelectRuns(string[]? only)
    {
        if (only is not { Length: > 0 }) return StudyPlan.Runs.ToList();
        var known = StudyPlan.AllRuns.ToDictionary(r => r.Id);
        var unknown = only.Where(id => id != StudyPlan.Table4Id && !known.ContainsKey(id)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"--only: unknown run(s) {string.Join(", ", unknown)} (known: {string.Join(", ", StudyPlan.Runs.Select(r => r.Id))}, {StudyPlan.Table4Id}, t4_l{{2,4,6}}_e{{6,12,24}})");
        return only.SelectMany(id => id == StudyPlan.Table4Id ? StudyPlan.Table4Runs : [known[id]]).DistinctBy(r => r.Id).ToList();
    }

    public static int Run(StudyPlan plan, string outDir, bool fresh, string[]? only, Device device, int threads, string bf16Mode = "auto",
                          int seeds = 1, int upstreamSeeds = 1)
    {
        if (seeds is < 1 or > 30) throw new ArgumentException($"--seeds: must be 1 to 30, got {seeds}");
        if (upstreamSeeds < 1 || upstreamSeeds > seeds) throw new ArgumentException($"--upstream-seeds: must be 1 to --seeds ({seeds}), got {upstreamSeeds}");
        CommonOptions.ApplyThreads(threads);
        // --only also orders: the runs given first are done first (and reported in the plan's order).
        var runs = SelectRuns(only);
        var notes = new List<string>();
        if (SkipBf16(bf16Mode, explicitlyAsked: only?.Contains("jetpack_bf16") == true, device) is { } why)
        {
            runs.RemoveAll(r => r.Precision == Jetpack.Model.Training.Precision.Bf16);
            notes.Add(why);
            AnsiConsole.MarkupLine($"[yellow]note:[/] {Markup.Escape(why)}");
        }
        if (runs.FirstOrDefault(r => r.Precision == Jetpack.Model.Training.Precision.Bf16) is { } bf16) CpuBf16.WarnIfEmulated(bf16.Precision, device);
        Directory.CreateDirectory(outDir);
        var clock = Stopwatch.StartNew();
        var stageSeconds = new Dictionary<string, double?>();            // null: done earlier and reused
        AnsiConsole.Write(new Rule($"[bold]MoE Jetpack study on Fashion-MNIST[/] ({plan.Name}{(seeds > 1 ? $", {seeds} seeds" : "")})"));

        var results = new List<RunResult>();
        for (int s = 0; s < seeds; s++)
        {
            // Seed 0 keeps the one-seed study's folders (so its finished stages are reused); the others have their own.
            var seedPlan = plan with { Seed = plan.SeedFor(s) };
            string seedDir = s == 0 ? outDir : Path.Combine(outDir, "seeds", $"seed{s}");
            string tag = seeds > 1 ? $" [seed {s + 1}/{seeds}]" : "";
            int u = s % upstreamSeeds;
            var upstreamPlan = plan with { Seed = plan.SeedFor(u) };
            string upstreamDir = u == 0 ? outDir : Path.Combine(outDir, "seeds", $"upstream{u}");

            // 1. Upstream: the dense predecessor (ViT-S-like) and the dense target (ViT-T-like) on classes 0–4.
            string predPath = Upstream(upstreamPlan, "vit_fmnist_pred", plan.PredecessorSteps, upstreamDir, fresh, device, threads, stageSeconds, tag);
            string targetPath = Upstream(upstreamPlan, "vit_fmnist_t", plan.TargetSteps, upstreamDir, fresh, device, threads, stageSeconds, tag);

            // 2–3. Profile the predecessor once and build every initial checkpoint (the recycling draw follows the seed).
            var inits = BuildInits(seedPlan, runs, predPath, targetPath, seedDir, fresh, device, stageSeconds, tag);

            // 4. Downstream runs at equal steps.
            foreach (var run in runs)
            {
                var lap = Stopwatch.StartNew();
                var config = DownstreamConfig(seedPlan, run, inits.GetValueOrDefault(run.Id), seedDir);
                string stamp = Stamp(config);                                        // hashes the initial checkpoint: once per run
                string runOut = config.Out!;                                         // DownstreamConfig sets it
                bool cached = !fresh && StageDone(runOut, stamp);
                AnsiConsole.Write(new Rule($"{run.Id}: {Markup.Escape(run.Label + tag)}{(cached ? " (done earlier, kept)" : "")}").LeftJustified());
                if (!cached)
                {
                    torch.manual_seed((long)seedPlan.Seed);                          // the same fresh init for every scratch run of a model and seed
                    LocalTraining.Run(config, resume: false, until: null, device, threads);
                    MarkDone(runOut, stamp);
                }
                stageSeconds[$"run {run.Id}{(seeds > 1 ? $" seed {s + 1}" : "")}"] = cached ? null : lap.Elapsed.TotalSeconds;
                results.Add(RunResult.Read(run, Path.Combine(runOut, "metrics.jsonl"), s, seedPlan.Seed));
            }
        }

        // 5. Tables and plots (rows in the plan's order, whatever order the runs were done in).
        var order = StudyPlan.AllRuns.ToList();
        results = results.OrderBy(r => order.IndexOf(r.Run)).ThenBy(r => r.SeedIndex).ToList();
        var report = new StudyReport(plan, results, stageSeconds, clock.Elapsed.TotalSeconds, notes);
        report.Write(outDir);
        AnsiConsole.Write(new Rule("[bold]result[/]"));
        AnsiConsole.WriteLine(File.ReadAllText(Path.Combine(outDir, "results.md")));
        AnsiConsole.MarkupLine($"written: {Markup.Escape(outDir)}/results.md, results.json, fig5_convergence.png, table3_strategies.png ({clock.Elapsed.TotalMinutes:F1} min)");
        return 0;
    }

    /// <summary>
    /// Why the bf16-policy run is left out (null: it runs). <c>auto</c> leaves it out where bf16 would be
    /// emulated; <c>--only jetpack_bf16</c> is an explicit request and runs it (with the warning) unless <c>off</c>.
    /// </summary>
    public static string? SkipBf16(string mode, bool explicitlyAsked, Device device, string cpuinfo = "/proc/cpuinfo") => mode switch
    {
        "off" => "the bf16-policy run is off (--bf16 off)",
        "on" => null,
        "auto" when !explicitlyAsked && CpuBf16.Warning(Jetpack.Model.Training.Precision.Bf16, device, cpuinfo) is not null =>
            "the bf16-policy run (jetpack_bf16) is left out: this CPU has no avx512_bf16 or amx_bf16, so libtorch would emulate bf16 " +
            "at several times the fp32 step time (6x measured); --bf16 on runs it anyway",
        "auto" => null,
        _ => throw new ArgumentException($"--bf16: '{mode}' is not one of auto, on, off"),
    };

    internal static string Upstream(StudyPlan plan, string model, int steps, string outDir, bool fresh, Device device, int threads, Dictionary<string, double?> seconds,
                                    string tag = "")
    {
        var config = new RunSpec
        {
            Model = model,
            Data = plan.Data(StudyPlan.UpstreamClasses, perClass: null),
            Recipe = plan.UpstreamRecipe(steps),
            EvalEvery = Math.Max(1, steps / 4), CheckpointEvery = Math.Max(1, steps / 4),
            Out = Path.Combine(outDir, "upstream", model),
        };
        var lap = Stopwatch.StartNew();
        string stamp = Stamp(config);
        bool cached = !fresh && StageDone(config.Out, stamp);
        AnsiConsole.Write(new Rule($"upstream: {model} on classes {StudyPlan.UpstreamClasses}{Markup.Escape(tag)}{(cached ? " (done earlier, kept)" : "")}").LeftJustified());
        if (!cached)
        {
            torch.manual_seed((long)plan.Seed);
            // Resume a stopped upstream run rather than redo it (its checkpoint is exact).
            bool resume = !fresh && Directory.Exists(Path.Combine(config.Out, "checkpoint")) && SameConfig(config.Out, stamp);
            WriteStamp(config.Out, stamp);
            LocalTraining.Run(config, resume, until: null, device, threads);
            MarkDone(config.Out, stamp);
        }
        if (!cached || !seconds.ContainsKey($"upstream {model}")) seconds[$"upstream {model}"] = cached ? null : lap.Elapsed.TotalSeconds;
        return Path.Combine(config.Out, "final.safetensors");
    }

    /// <summary>The initial checkpoint of every run that needs one (run id → path).</summary>
    static Dictionary<string, string> BuildInits(StudyPlan plan, IReadOnlyList<StudyRun> runs, string predPath, string targetPath,
                                                 string outDir, bool fresh, Device device, Dictionary<string, double?> seconds, string tag = "")
    {
        var lap = Stopwatch.StartNew();
        string dir = Path.Combine(outDir, "init");
        Directory.CreateDirectory(dir);
        var paths = new Dictionary<string, string>();
        var needed = runs.Where(r => r.Init != StudyInit.Scratch).ToList();
        if (needed.Count == 0) return paths;
        string stamp = JsonSerializer.Serialize(new { predecessor = Digest(predPath), target = Digest(targetPath), plan.ProfileImages, plan.Seed });
        if (!fresh && StageDone(dir, stamp) && needed.All(r => File.Exists(InitPath(dir, r))))
        {
            AnsiConsole.MarkupLine($"initial checkpoints{Markup.Escape(tag)}: done earlier, kept");
            foreach (var r in needed) paths[r.Id] = InitPath(dir, r);
            seconds[$"profile + recycle{tag}"] = null;
            return paths;
        }

        var predSpec = ModelRegistry.Get("vit_fmnist_pred");
        var targetSpec = ModelRegistry.Get("vit_fmnist_t");
        using var sources = RecycleSources.Load(predPath, predSpec, targetPath, targetSpec);
        using var stats = Profile(plan, predSpec, sources.Predecessor, device);
        var partitioner = (Func<Tensor, int, long, int[]>)((coact, parts, seed) =>
            MetisPartitioner.PartGraphKway(CoActivationGraph.FromMatrix(coact), parts, (int)seed));

        var table = new Table().AddColumns("run", "initial checkpoint", "how");
        foreach (var run in needed)
        {
            string path = InitPath(dir, run);
            paths[run.Id] = path;
            if (run.Init == StudyInit.UpstreamTarget)
            {
                WithFreshHead(targetSpec, sources.Target!, path, plan.Seed);
                table.AddRow(run.Id, Path.GetFileName(path), "upstream target, fresh head");
                continue;
            }
            var successor = ModelRegistry.Get(run.Model);
            var options = run.Init == StudyInit.PredecessorSelection
                ? new RecycleOptions { DenseFrom = DenseSource.Predecessor, Seed = (long)plan.Seed }
                : new RecycleOptions { Method = run.Method!.Value, Seed = (long)plan.Seed, Partitioner = partitioner, GraphParts = 16 };
            if (File.Exists(path) && paths.Values.Count(p => p == path) > 1) continue;   // shared by several runs (fp32 and bf16)
            // The same pipeline as `jetpack recycle`: metadata, index sets and report beside the checkpoint.
            RecyclePipeline.Recycle(sources, successor, stats, options, RecycleOutputs.Beside(path));
            table.AddRow(run.Id, Path.GetFileName(path), run.Init == StudyInit.PredecessorSelection
                ? "weight selection from the predecessor (spec §5.7)" : $"recycled: {RecycleOptions.Name(options.Method)}");
        }
        AnsiConsole.Write(table);
        MarkDone(dir, stamp);
        seconds[$"profile + recycle{tag}"] = lap.Elapsed.TotalSeconds;
        return paths;
    }

    static string InitPath(string dir, StudyRun run) => Path.Combine(dir, run.Init switch
    {
        StudyInit.UpstreamTarget => "dense_upstream.safetensors",
        StudyInit.PredecessorSelection => "dense_selection.safetensors",
        _ => $"{run.Model}_{RecycleOptions.Name(run.Method!.Value)}.safetensors",
    });

    /// <summary>Importance statistics of the predecessor on upstream images: L2 everywhere, attention inputs (weight selection), co-activation of MoE blocks (graph).</summary>
    static ActivationStats Profile(StudyPlan plan, ModelSpec predSpec, DenseCheckpoint pred, Device device) =>
        ProfileData.Run(new ProfileSource { FashionMnist = true, Classes = StudyPlan.UpstreamClasses, Count = plan.ProfileImages, Batch = 128, Workers = 2 },
                        predSpec, pred, device, (long)plan.Seed,
                        ModelRegistry.Get("v_jetmoe_fmnist").MoeLayers().Select(l => $"{l.Prefix}.act").ToHashSet(), StatKinds.L2, attentionInputs: true);


    /// <summary>The upstream target's weights with the head re-initialised (downstream classes are new; spec §11.3 never reuses a head).</summary>
    static void WithFreshHead(ModelSpec spec, DenseCheckpoint source, string path, ulong seed)
    {
        torch.manual_seed((long)seed);
        using var model = ModelRegistry.Create(spec);
        using (no_grad())
            foreach (var (key, tensor) in model.state_dict())
                if (!DenseStitching.IsHead(key)) tensor.copy_(source.Tensors[key]);
        ModelCheckpoint.Save(path, spec, model, new Dictionary<string, string> { ["init"] = "upstream target, fresh head" });
    }

    internal static RunSpec DownstreamConfig(StudyPlan plan, StudyRun run, string? init, string outDir) => new()
    {
        Model = run.Model, Init = init,
        Data = plan.Data(StudyPlan.DownstreamClasses, plan.PerClass),
        Recipe = plan.Recipe(run),
        EvalEvery = Math.Max(1, plan.DownstreamSteps / plan.Evaluations), CheckpointEvery = plan.DownstreamSteps,
        Out = Path.Combine(outDir, "runs", run.Id),
    };

    // A stage is done when its folder holds `done.json` equal to the config it was made with
    // (and, for files it reads, their content hashes): a changed plan redoes it, an unchanged one is
    // kept. Neither the results folder's path nor file times take part, so a copied or moved study
    // folder is still recognised.
    static string Stamp(RunSpec config) => JsonSerializer.Serialize(config with { Init = config.Init is null ? null : Digest(config.Init), Out = "" });
    static bool StageDone(string dir, string stamp) => File.Exists(Path.Combine(dir, "done.json")) && File.ReadAllText(Path.Combine(dir, "done.json")) == stamp;
    static bool SameConfig(string dir, string stamp) => File.Exists(Path.Combine(dir, "stage.json")) && File.ReadAllText(Path.Combine(dir, "stage.json")) == stamp;
    static void WriteStamp(string dir, string stamp) { Directory.CreateDirectory(dir); File.WriteAllText(Path.Combine(dir, "stage.json"), stamp); }
    static void MarkDone(string dir, string stamp) { Directory.CreateDirectory(dir); File.WriteAllText(Path.Combine(dir, "done.json"), stamp); }
    static string Digest(string path) => $"{Path.GetFileName(path)}:{Jetpack.Model.Checkpoints.Sha256Hex.OfFile(path)}";
}
