using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Application.Runs;
using Jetpack.Model.Distributed;
using Jetpack.Model.Models;
using Jetpack.Model.Moe;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;
using Jetpack.Protocol.Channels;
using Jetpack.WorkerCluster;

namespace Jetpack.Cli.Bench;

/// <summary>
/// <c>jetpack bench scaling</c> (issue 19): a grid of total expert counts × worker processes over the
/// TCP data plane, a few timed steps each. Per row: step time split into compute, exchange and
/// all-reduce (rank 0, and every rank's compute), exchange bytes per step and expert state per rank
/// (from the shapes, <see cref="LayoutCosts"/>), peak RSS of every worker process (VmHWM), routing
/// balance at initialisation. Then the step-time model of <c>jetpack plan</c> is fitted on the 1- and
/// 2-rank rows and checked against the 4-rank rows. Ranks outnumber cores here: compute times are
/// reported per rank and the model accounts for the cores the ranks share.
/// </summary>
public static class BenchScaling
{
    public const string JsonFile = "bench-scaling.json";

    /// <summary>--quick: the 2 × 2 grid with one timed step (after the untimed one) of 8 images — launching the
    /// worker processes dominates; its figures only prove the pipeline, the full grid measures.</summary>
    public const int QuickSteps = 1, QuickBatch = 8;

    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = $"72 and 147 experts on 1 and 2 processes, {QuickSteps} timed step, batch {QuickBatch}: under a minute on an idle machine (the test suite runs it)" };
        var experts = new Option<string>("--experts") { Description = "total experts per MoE layer (a third core, two thirds universal)", DefaultValueFactory = _ => "72,147,294,588,1176" };
        var ranks = new Option<string>("--ranks") { Description = "worker process counts", DefaultValueFactory = _ => "1,2,4" };
        var steps = new Option<int>("--steps") { Description = "timed steps per row (one untimed step first)", DefaultValueFactory = _ => 3 };
        var batch = new Option<int>("--batch") { Description = "global batch", DefaultValueFactory = _ => 32 };
        var threads = new Option<int>("--threads-per-rank") { Description = "torch threads of every rank (1: on a loaded machine two spinning threads of one rank wait for each other, measured 117 s vs 3 s per step)", DefaultValueFactory = _ => 1 };
        var share = new Option<int>("--process-share-mib") { Description = "the memory one process may use for expert state (marks rows that would not fit on one rank)", DefaultValueFactory = _ => 512 };
        var output = new Option<string>("--out") { Description = "folder for bench-scaling.json, .md and .png", DefaultValueFactory = _ => "results/bench" };
        var refit = new Option<string?>("--refit") { Description = "measure nothing: fit and validate the model again on the rows of an earlier bench-scaling.json (its GEMM peak; the memory bandwidth is measured now if the file has none), written to --out" };
        var cmd = new Command("scaling", "Expert counts × worker processes over the TCP data plane: step time (compute / exchange / all-reduce), exchange bytes, expert state and peak RSS per rank, routing balance; fits and validates the constants of `jetpack plan`.")
        {
            quick, experts, ranks, steps, batch, threads, share, output, refit,
        };
        cmd.SetAction(r =>
        {
            if (r.GetValue(refit) is { } earlier) return Refit(earlier, r.GetValue(output)!);
            bool q = r.GetValue(quick);
            return Run(q ? [72, 147] : Ints(r.GetValue(experts)!, "--experts"), q ? [1, 2] : Ints(r.GetValue(ranks)!, "--ranks"),
                       q ? QuickSteps : r.GetValue(steps), q ? QuickBatch : r.GetValue(batch), r.GetValue(threads), r.GetValue(share), r.GetValue(output)!);
        });
        return cmd;
    }

    static int[] Ints(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var values = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out values[i]) || values[i] < 1)
                throw new ArgumentException($"{option}: '{parts[i]}' is not a positive integer");
        if (values.Length == 0) throw new ArgumentException($"{option}: give at least one value");
        return values;
    }

    /// <summary>The Fashion-MNIST MoE Jetpack model with <paramref name="experts"/> experts per MoE layer: a third core (hidden 4D), two thirds universal (hidden D), as the paper's 98/196.</summary>
    public static ModelSpec ModelWith(int experts)
    {
        var baseSpec = ModelRegistry.Get("v_jetmoe_fmnist");
        var moe = baseSpec.Vit!.Moe! with { CoreExperts = experts / 3, UniversalExperts = experts - experts / 3 };
        return baseSpec with { Variant = $"v_jetmoe_fmnist_e{experts}", Vit = baseSpec.Vit with { Moe = moe } };
    }

    public sealed record Row
    {
        public int Experts { get; init; }
        public int CoreExperts { get; init; }
        public int UniversalExperts { get; init; }
        public int Ranks { get; init; }
        public int G { get; init; }
        public int ThreadsPerRank { get; init; }
        public double StepSeconds { get; init; }
        public double ComputeSeconds { get; init; }
        public double ExchangeSeconds { get; init; }
        public double AllReduceSeconds { get; init; }
        public double[] ComputeSecondsPerRank { get; init; } = [];
        public double ComputeGflopPerRank { get; init; }
        public double ExchangeBytesPerStep { get; init; }
        public long ExchangeMessagesPerStep { get; init; }
        public double AllReduceBytesPerRank { get; init; }
        public double ExpertStateBytesPerRank { get; init; }
        public double ReplicatedStateBytes { get; init; }
        public bool ExpertStateExceedsProcessShareOnOneRank { get; init; }
        public double[] PeakRssMbPerRank { get; init; } = [];
        public double BusiestExpertCombineShare { get; init; }
        public double CombineLoadEntropy { get; init; }
        public double? PredictedStepSeconds { get; set; }
    }

    static int Run(int[] expertCounts, int[] rankCounts, int steps, int batch, int threads, int shareMib, string outDir)
    {
        if (steps < 1 || batch < rankCounts.Max()) throw new ArgumentException($"--steps must be ≥ 1 and --batch ≥ the largest rank count (got {steps}, {batch})");
        if (threads < 1) throw new ArgumentException($"--threads-per-rank must be ≥ 1 (got {threads})");
        try { Directory.CreateDirectory(outDir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ArgumentException($"cannot write --out {outDir}: {e.Message}", e); }
        int cores = Environment.ProcessorCount;
        string flags = CpuFlags();
        AnsiConsole.MarkupLine($"[bold]bench scaling[/]: experts {string.Join(", ", expertCounts)} × processes {string.Join(", ", rankCounts)}, batch {batch}, {steps} timed step(s), TCP data plane; {cores} cores ({Markup.Escape(flags)})");
        if (rankCounts.Max() > cores)
            AnsiConsole.MarkupLine($"[yellow]ranks outnumber cores here[/] ({rankCounts.Max()} processes on {cores} cores): compute time is reported per rank and the fitted model accounts for the shared cores");
        var rows = new List<Row>();
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new ElapsedTimeColumn()).Start(ctx =>
        {
            var task = ctx.AddTask($"{expertCounts.Length * rankCounts.Length} configurations", maxValue: expertCounts.Length * rankCounts.Length);
            foreach (int e in expertCounts)
            {
                var spec = ModelWith(e);
                var (busiest, entropy) = RoutingBalance(spec, batch);
                foreach (int n in rankCounts)
                {
                    task.Description = $"{e} experts on {n} process(es)";
                    var row = Measure(spec, n, steps, batch, threads, shareMib) with { BusiestExpertCombineShare = busiest, CombineLoadEntropy = entropy };
                    rows.Add(row);
                    AnsiConsole.MarkupLine($"{e} experts, {n} rank(s): {row.StepSeconds:F3} s/step (compute {row.ComputeSeconds:F3}, exchange {row.ExchangeSeconds:F3}, all-reduce {row.AllReduceSeconds:F3}); expert state {row.ExpertStateBytesPerRank / 1e6:F1} MB/rank; peak RSS {string.Join("/", row.PeakRssMbPerRank.Select(m => m.ToString("F0", CultureInfo.InvariantCulture)))} MB");
                    task.Increment(1);
                }
            }
        });
        double peak = BenchCommand.MeasureGemmPeak(CPU) / 1e9;
        double memory = MemoryBandwidth.Measure().TriadGBps;
        string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "";
        return Report(rows, new Measured(cores, flags, load, batch, steps, shareMib, peak, memory, null), outDir);
    }

    /// <summary>What a measurement was taken with (written as the json's top-level fields, which <c>--refit</c> reads back).</summary>
    sealed record Measured(int Cores, string CpuFlags, string LoadavgAtEnd, int Batch, int TimedSteps, int ProcessShareMib, double GemmPeakGflops, double MemoryGBps, string? RefittedFrom, bool MemoryMeasuredAtRefit = false);

    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Fits the model on the 1- and 2-rank rows, predicts the others, writes json, md and png.</summary>
    static int Report(List<Row> rows, Measured m, string outDir)
    {
        var fit = StepTimeModel.Fit(rows.Where(r => r.Ranks <= 2).Select(Observation).ToList(), m.Cores, m.GemmPeakGflops, m.MemoryGBps);
        var validation = rows.Where(r => r.Ranks > 2).Select(r =>
        {
            r.PredictedStepSeconds = fit.Predict(r.ComputeGflopPerRank * 1e9, StateBytes(r), r.ThreadsPerRank, r.Ranks, r.ExchangeMessagesPerStep, r.ExchangeBytesPerStep, r.Ranks, r.AllReduceBytesPerRank);
            return Math.Abs(r.PredictedStepSeconds.Value - r.StepSeconds) / r.StepSeconds;
        }).ToList();
        int maxRanks = rows.Max(r => r.Ranks);
        var report = new Dictionary<string, object?>
        {
            ["note"] = $"ranks outnumber cores here ({maxRanks} processes on {m.Cores} cores): per-rank compute times are the meaningful figure; the step time of more ranks than cores includes waiting for a core",
            ["refitted_from"] = m.RefittedFrom,
            ["cores"] = m.Cores, ["cpu_flags"] = m.CpuFlags, ["loadavg_at_end"] = m.LoadavgAtEnd, ["batch"] = m.Batch, ["timed_steps"] = m.TimedSteps, ["data_plane"] = "tcp",
            ["process_share_mib"] = m.ProcessShareMib,
            ["rows"] = rows,
            ["fit"] = fit,
            ["validation"] = validation.Count == 0 ? null : new { fitted_on = "rows with 1 and 2 ranks", predicted = "rows with more ranks", mean_abs_relative_error = validation.Average(), max_abs_relative_error = validation.Max(), goal = 0.25 },
        };
        Directory.CreateDirectory(outDir);
        WriteAtomically(Path.Combine(outDir, JsonFile), JsonSerializer.Serialize(report, JsonOptions));
        WriteAtomically(Path.Combine(outDir, "bench-scaling.md"), Markdown(rows, fit, validation, m));
        Plot(rows, Path.Combine(outDir, "bench-scaling.png"));
        if (validation.Count > 0)
            AnsiConsole.MarkupLine($"plan's model, fitted on 1–2 ranks, predicts the {validation.Count} rows with more ranks within [bold]{100 * validation.Average():F1} %[/] on average (max {100 * validation.Max():F1} %; goal 25 %)");
        AnsiConsole.MarkupLine($"written: {Markup.Escape(Path.Combine(outDir, JsonFile))}, bench-scaling.md, bench-scaling.png (load average at the end: {m.LoadavgAtEnd})");
        return 0;
    }

    /// <summary>--refit: the rows of an earlier run, fitted again with today's model; errors name the file.</summary>
    static int Refit(string path, string outDir)
    {
        if (!File.Exists(path)) throw new ArgumentException($"--refit {path}: not found");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            var rows = root.GetProperty("rows").Deserialize<List<Row>>(JsonOptions) ?? throw new ArgumentException($"--refit {path}: 'rows' is empty");
            if (rows.Count == 0) throw new ArgumentException($"--refit {path}: 'rows' is empty");
            var fit = root.GetProperty("fit");
            bool stored = fit.TryGetProperty("memory_g_bps", out var mem) && mem.GetDouble() > 0;
            double memory = stored ? mem.GetDouble() : MemoryBandwidth.Measure().TriadGBps;
            var m = new Measured(root.GetProperty("cores").GetInt32(), root.GetProperty("cpu_flags").GetString() ?? "", root.GetProperty("loadavg_at_end").GetString() ?? "",
                                 root.GetProperty("batch").GetInt32(), root.GetProperty("timed_steps").GetInt32(), root.GetProperty("process_share_mib").GetInt32(),
                                 fit.GetProperty("gemm_peak_gflops").GetDouble(), memory, Path.GetFullPath(path), MemoryMeasuredAtRefit: !stored);
            foreach (var r in rows) r.PredictedStepSeconds = null;
            return Report(rows, m, outDir);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new ArgumentException($"--refit {path}: not a bench-scaling.json ({e.Message})", e);
        }
    }

    /// <summary>Parameters + AdamW moments a rank holds: its experts and the replicated layers.</summary>
    static double StateBytes(Row r) => r.ExpertStateBytesPerRank + r.ReplicatedStateBytes;

    static StepObservation Observation(Row r) =>
        new(r.ComputeGflopPerRank * 1e9, StateBytes(r), r.ThreadsPerRank, r.Ranks, r.ComputeSecondsPerRank.Max(), r.ExchangeMessagesPerStep, r.ExchangeBytesPerStep,
            r.ExchangeSeconds, r.AllReduceBytesPerRank, r.AllReduceSeconds);

    static Row Measure(ModelSpec spec, int n, int steps, int batch, int threads, int shareMib)
    {
        var job = new WorkerJobSpec
        {
            ModelSpecJson = JsonSerializer.Serialize(spec, ModelSpec.Json),
            Data = new RunData { Dataset = "synthetic", SyntheticCount = batch, Augment = false },
            Recipe = new TrainerOptions { Steps = steps + 1, GlobalBatch = batch, WarmupSteps = 1, Mixup = null },
            EvalEvery = 1_000_000, CheckpointEvery = 1_000_000,
        };
        var launcher = WorkerLauncher.StartAsync(new LaunchOptions { WorldSize = n, JobId = $"bench-scaling-{spec.Variant}-{n}", StepDeadline = TimeSpan.FromMinutes(5), ThreadsPerWorker = threads, DataPlane = DataPlaneTransport.Tcp })
                                     .GetAwaiter().GetResult();
        ClusterOutcome outcome;
        double[] rss;
        try
        {
            outcome = launcher.RunJobAsync(job).GetAwaiter().GetResult();
            if (outcome.Failure is { } f) throw new InvalidOperationException($"{spec.Variant} on {n} ranks: {f}\n{launcher.Report()}");
            rss = launcher.Workers.Select(w => PeakRssMb(w.Pid)).ToArray();       // before the processes exit
        }
        finally { launcher.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
        var timed = outcome.Progress.Select(p => p.Skip(1).ToList()).ToList();   // the first step pays for allocation and connections
        double Mean(IEnumerable<double> xs) { var l = xs.ToList(); return l.Count == 0 ? double.NaN : l.Average(); }
        var r0 = timed[0];
        var cost = LayoutCosts.Of(spec, ParallelLayout.Flat(n), batch);
        var computePerRank = timed.Select(p => Mean(p.Select(x => x.StepSeconds - x.ExchangeSeconds - x.AllReduceSeconds))).ToArray();
        var oneRank = LayoutCosts.Of(spec, ParallelLayout.Flat(1), batch);
        var moe = spec.Vit!.Moe!;
        return new Row
        {
            Experts = moe.TotalExperts, CoreExperts = moe.CoreExperts, UniversalExperts = moe.UniversalExperts,
            Ranks = n, G = n, ThreadsPerRank = threads,
            StepSeconds = Mean(r0.Select(x => x.StepSeconds)),
            ExchangeSeconds = Mean(r0.Select(x => x.ExchangeSeconds)),
            AllReduceSeconds = Mean(r0.Select(x => x.AllReduceSeconds)),
            ComputeSeconds = computePerRank[0],
            ComputeSecondsPerRank = computePerRank,
            ComputeGflopPerRank = cost.ComputeFlops / 1e9,
            ExchangeBytesPerStep = cost.ExchangeBytes,
            ExchangeMessagesPerStep = cost.ExchangeMessages,
            AllReduceBytesPerRank = cost.AllReduceBytes,
            ExpertStateBytesPerRank = cost.ExpertStateBytes,
            ReplicatedStateBytes = cost.ReplicatedStateBytes,
            ExpertStateExceedsProcessShareOnOneRank = oneRank.ExpertStateBytes > (double)shareMib * (1 << 20),
            PeakRssMbPerRank = rss,
        };
    }

    /// <summary>Peak resident set of a process (VmHWM of /proc/PID/status), MB; NaN where /proc is not there.</summary>
    static double PeakRssMb(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return double.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024 / 1e6;
        }
        catch (IOException) { }
        return double.NaN;
    }

    /// <summary>
    /// Routing balance at initialisation, one forward of the first MoE layer's router on standard-normal
    /// tokens (seeded): dispatch is a softmax over tokens, so every slot gets mass 1 by construction;
    /// the load that can be unequal is the combine mass each expert's slots receive. Returns the busiest
    /// expert's share of it and the entropy of the shares over log E (1 = perfectly even).
    /// </summary>
    static (double Busiest, double Entropy) RoutingBalance(ModelSpec spec, int batch)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var v = spec.Vit!;
        var moe = v.Moe!;
        torch.manual_seed(7);
        using var layer = new SpheroMoE(v.Dim, moe with { NoiseStd = 0 }, 0);
        var tokens = torch.randn([batch, v.NumPatches + 1, v.Dim], generator: new Generator(8));    // [b, n, d]
        var (_, combine) = layer.Route(tokens, null);                                                 // [b, n, e·s]
        var perExpert = combine.sum([0, 1]).reshape(moe.TotalExperts, moe.SlotsPerExpert).sum(1);    // [e]
        var p = perExpert / perExpert.sum();
        double busiest = p.max().item<float>();
        double entropy = (-(p * p.clamp_min(1e-30).log()).sum()).item<float>() / Math.Log(moe.TotalExperts);
        return (busiest, entropy);
    }

    static string CpuFlags()
    {
        try
        {
            var flags = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))?.Split(':')[1].Split(' ') ?? [];
            var wanted = flags.Where(f => f == "avx2" || f.StartsWith("avx512", StringComparison.Ordinal) || f.StartsWith("amx", StringComparison.Ordinal)).Distinct().Order();
            return string.Join(" ", wanted);
        }
        catch (IOException) { return "unknown"; }
    }

    static void WriteAtomically(string path, string text)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, overwrite: true);
    }

    static string Markdown(List<Row> rows, StepTimeModel fit, List<double> validation, Measured m)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine("# bench scaling");
        md.AppendLine();
        if (m.RefittedFrom is { } from)
            md.AppendLine($"Refitted on {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC from the rows of `{from}` (`jetpack bench scaling --refit`); the measurements are that run's{(m.MemoryMeasuredAtRefit ? ", except the memory bandwidth, which it had not measured and was measured at the refit" : "")}.").AppendLine();
        md.AppendLine($"{m.Cores} cores ({m.CpuFlags}); load average at the end: {m.LoadavgAtEnd}. **Ranks outnumber cores here**: the per-rank compute time is the meaningful figure; a step of more ranks than cores includes waiting for a core. Exchange bytes, messages and expert state come from the shapes (fixed by soft routing), RSS is each process's VmHWM.");
        md.AppendLine();
        md.AppendLine("| experts (core/univ) | ranks | G | step s | compute s (rank 0) | compute s per rank | exchange s | all-reduce s | exchange MB/step | expert p+m+v MB/rank | peak RSS MB/rank | busiest expert share | combine entropy | predicted s |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows)
            md.AppendLine(string.Create(inv, $"| {r.Experts} ({r.CoreExperts}/{r.UniversalExperts}){(r.ExpertStateExceedsProcessShareOnOneRank ? " ⚑" : "")} | {r.Ranks} | {r.G} | {r.StepSeconds:F3} | {r.ComputeSeconds:F3} | {string.Join(" / ", r.ComputeSecondsPerRank.Select(c => c.ToString("F3", inv)))} | {r.ExchangeSeconds:F3} | {r.AllReduceSeconds:F3} | {r.ExchangeBytesPerStep / 1e6:F1} | {r.ExpertStateBytesPerRank / 1e6:F1} | {string.Join(" / ", r.PeakRssMbPerRank.Select(m => m.ToString("F0", inv)))} | {r.BusiestExpertCombineShare:F4} | {r.CombineLoadEntropy:F4} | {(r.PredictedStepSeconds is { } p ? p.ToString("F3", inv) : "")} |"));
        md.AppendLine();
        md.AppendLine("⚑ expert parameters + AdamW moments exceed one process's share on a single rank.");
        md.AppendLine();
        md.AppendLine(string.Create(inv, $"Fitted on the 1- and 2-rank rows (compute on those with every core busy): {fit.ThreadGflops:F2} GFLOP/s per thread ({100 * fit.ComputeEfficiency:F1} % of this machine's fp32 GEMM peak, {fit.GemmPeakGflops:F1} GFLOP/s) plus {fit.StateGBps:F2} GB/s of parameters and AdamW moments per thread ({100 * fit.ParameterPathEfficiency:F1} % of the memory bandwidth, {fit.MemoryGBps:F1} GB/s triad), all-to-all {1e6 * fit.MessageSeconds:F0} µs per message + {fit.ExchangeGBps:F2} GB/s, all-reduce {1e6 * fit.RingStepSeconds:F0} µs per ring step + {fit.AllReduceGBps:F2} GB/s; compute, all-to-all and all-reduce stretch by the share of a core a rank gets."));
        if (validation.Count > 0)
            md.AppendLine(string.Create(inv, $"Predicting the rows with more ranks: mean error **{100 * validation.Average():F1} %**, max {100 * validation.Max():F1} % (goal 25 %)."));
        return md.ToString();
    }

    static void Plot(List<Row> rows, string path)
    {
        var plot = new ScottPlot.Plot();
        foreach (var group in rows.GroupBy(r => r.Ranks))
        {
            var xs = group.Select(r => (double)r.Experts).ToArray();
            var step = plot.Add.Scatter(xs, group.Select(r => r.StepSeconds).ToArray());
            step.LegendText = $"{group.Key} rank(s): step";
            var compute = plot.Add.Scatter(xs, group.Select(r => r.ComputeSecondsPerRank.Max()).ToArray());
            compute.LegendText = $"{group.Key} rank(s): slowest rank's compute";
            compute.LinePattern = ScottPlot.LinePattern.Dashed;
            var predicted = group.Where(r => r.PredictedStepSeconds is not null).ToList();
            if (predicted.Count > 0)
            {
                var plan = plot.Add.ScatterPoints(predicted.Select(r => (double)r.Experts).ToArray(), predicted.Select(r => r.PredictedStepSeconds!.Value).ToArray());
                plan.LegendText = $"{group.Key} rank(s): step predicted by plan's model (fitted on 1–2 ranks)";
                plan.MarkerShape = ScottPlot.MarkerShape.OpenDiamond;
                plan.MarkerSize = 10;
                plan.Color = step.Color;
            }
        }
        plot.Axes.Bottom.Label.Text = "experts per MoE layer";
        plot.Axes.Left.Label.Text = "seconds per step";
        plot.Title("bench scaling: step time vs experts (ranks outnumber cores: see per-rank compute)");
        plot.ShowLegend();
        plot.SavePng(path, 1000, 550);
    }
}
