using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Cli.CommandLine;
using Jetpack.Cli.Runs;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;
using Jetpack.Model.Torch;
using Jetpack.Model.Training;

namespace Jetpack.Cli.Bench;

/// <summary>
/// <c>jetpack bench step</c> (issue 21): where a training step's time goes, and its ratios, measured
/// side by side in one run. Per batch size and repeat it runs, one after another (a V-JetMoE-T
/// configuration holds ≈ 4 GB, so never two at once): fp32 and bf16, each with the fused optimizer
/// pass and with the torch-ops path, then the PyTorch peer. Reported: the phases (gradient zeroing,
/// bf16 shadow copy, forward, backward, optimizer), the regions inside forward and backward
/// (<see cref="StepProbe"/>: attention, dense MLP, MoE routing — logits, softmax, entmax —,
/// dispatch/combine, experts), the C# memory bandwidth and the parameter path against it, the GEMM
/// peak, the CPU flags, and the medians over repeats of every ratio.
/// </summary>
public static class BenchStep
{
    sealed record Config(string Name, Precision Precision, bool Fused);

    static readonly Config[] All =
    [
        new("fp32", Precision.Fp32, true), new("fp32-torch-ops", Precision.Fp32, false),
        new("bf16", Precision.Bf16, true), new("bf16-torch-ops", Precision.Bf16, false),
    ];

    sealed class Measured
    {
        public List<double> Total { get; } = [];
        public Dictionary<string, List<double>> Phases { get; } = [];
        public Dictionary<string, List<double>> Regions { get; } = [];
    }

    /// <summary>The configuration names, for --configs.</summary>
    public static IEnumerable<string> ConfigNames => All.Select(c => c.Name);

    public static int Run(string variantName, int[] batches, int steps, int warmup, int repeats, int probeSteps, int rssSteps,
                          string python, string outDir, Device device, int threads, IReadOnlyCollection<string>? only = null, bool optimizerOnly = false)
    {
        var spec = Jetpack.Coordinator.Jobs.ModelArgument.Resolve(variantName);       // a name, a mapping or a model file
        AnsiConsole.MarkupLine($"model: {Markup.Escape(ModelRegistry.Summary(spec))}");
        CommonOptions.ApplyThreads(threads);
        int nThreads = torch.get_num_threads();
        var flags = CpuBf16.SimdFlags();
        bool hwBf16 = CpuBf16.HasHardwareBf16() == true || device.type != DeviceType.CPU;
        var configs = All.Where(c => (hwBf16 || c.Precision == Precision.Fp32) && (only is null || only.Contains(c.Name))).ToArray();
        double load = LoadAverage();
        AnsiConsole.MarkupLine($"[bold]bench step[/] {variantName}, batches {string.Join(", ", batches)}, {nThreads} threads, {device}, {repeats} repeats");
        AnsiConsole.MarkupLine($"CPU flags: {string.Join(' ', flags)}; load average (1 min) {load:F1}");
        if (!hwBf16) AnsiConsole.MarkupLine("[yellow]bf16 is emulated on this CPU (no avx512_bf16 / amx_bf16): bf16 rows skipped, fp32 stays the policy[/]");

        double peak = BenchCommand.MeasureGemmPeak(device);
        var bw = MemoryBandwidth.Measure();
        AnsiConsole.MarkupLine($"fp32 GEMM peak {peak / 1e9:F1} GFLOP/s; C# memory bandwidth: copy {bw.CopyGBps:F1} GB/s, triad {bw.TriadGBps:F1} GB/s");

        var report = new Dictionary<string, object?>
        {
            ["variant"] = variantName, ["threads"] = nThreads, ["device"] = device.ToString(), ["cpu_flags"] = string.Join(' ', flags),
            ["hardware_bf16"] = hwBf16, ["load_average_1min_start"] = load, ["repeats"] = repeats, ["steps_per_repeat"] = steps,
            ["gemm_peak_gflops"] = peak / 1e9, ["bandwidth_copy_gbps"] = bw.CopyGBps, ["bandwidth_triad_gbps"] = bw.TriadGBps,
        };
        var md = new StringBuilder();
        long parameters = 0;
        foreach (int batch in batches)
        {
            var measured = configs.ToDictionary(c => c.Name, _ => new Measured());
            var pytorch = new List<double>();
            var ratios = new Dictionary<string, List<double>>();
            void Ratio(string name, double value) { if (!ratios.TryGetValue(name, out var l)) ratios[name] = l = []; l.Add(value); }
            for (int r = 0; r < repeats; r++)
            {
                var medians = new Dictionary<string, double>();
                foreach (var c in configs)
                {
                    var (p, m) = RunConfig(spec, batch, device, c, warmup, steps, r == 0 ? probeSteps : 0, $"batch {batch}, repeat {r + 1}/{repeats}: {c.Name}", optimizerOnly);
                    parameters = p;
                    var x = measured[c.Name];
                    x.Total.Add(BenchCommand.Median(m.Total));
                    foreach (var (k, v) in m.Phases) Add(x.Phases, k, BenchCommand.Median(v));
                    foreach (var (k, v) in m.Regions) Add(x.Regions, k, BenchCommand.Median(v));
                    medians[c.Name] = BenchCommand.Median(m.Total);
                }
                if (!optimizerOnly && python.Length > 0 && BenchCommand.RunPyTorchPeer(python, variantName, spec, batch, steps, warmup, nThreads) is { } py)
                {
                    pytorch.Add(py.Seconds);
                    if (medians.ContainsKey("fp32")) Ratio("fp32_over_pytorch", medians["fp32"] / py.Seconds);
                    if (medians.ContainsKey("bf16")) Ratio("bf16_over_pytorch", medians["bf16"] / py.Seconds);
                }
                void Pair(string name, string over, string under) { if (medians.ContainsKey(over) && medians.ContainsKey(under)) Ratio(name, medians[over] / medians[under]); }
                Pair("fp32_torch_ops_over_fused", "fp32-torch-ops", "fp32");
                Pair("bf16_torch_ops_over_fused", "bf16-torch-ops", "bf16");
                Pair("bf16_speedup_over_fp32", "fp32", "bf16");
                Pair("bf16_speedup_over_fp32_both_torch_ops", "fp32-torch-ops", "bf16-torch-ops");
            }

            var b = new Dictionary<string, object?> { ["parameters"] = parameters, ["train_step_gflop"] = FlopCounter.TrainStepFlops(spec, batch) / 1e9 };
            foreach (var (name, l) in ratios) b[$"ratio_{name}_median"] = BenchCommand.Median(l);
            foreach (var (name, l) in ratios) b[$"ratio_{name}_all"] = l;
            if (pytorch.Count > 0) b["pytorch_step_seconds_median"] = BenchCommand.Median(pytorch);
            md.AppendLine($"## batch {batch}").AppendLine();
            md.AppendLine("| ratio (median over repeats) | value | per repeat |").AppendLine("|---|---|---|");
            foreach (var (name, l) in ratios) md.AppendLine($"| {name} | {BenchCommand.Median(l):F3} | {string.Join(", ", l.Select(v => v.ToString("F3")))} |");
            md.AppendLine();
            foreach (var c in configs)
            {
                var x = measured[c.Name];
                double total = BenchCommand.Median(x.Total);
                var phases = x.Phases.ToDictionary(kv => kv.Key, kv => BenchCommand.Median(kv.Value));
                double paramPath = phases.GetValueOrDefault("zero_grad") + phases.GetValueOrDefault("optimizer") + phases.GetValueOrDefault("shadow_sync") + phases.GetValueOrDefault("bf16_widen");
                // The bandwidth limit of the parameter path: zeroing writes 4 bytes/parameter (fp32 grads) and
                // AdamW moves 28 (read p, g, m, v; write p, m, v); bf16: grads read as 2 bytes, shadow written as 2.
                double bytes = parameters * (c.Precision == Precision.Fp32 ? 4.0 + 28 : 28);
                double limit = bytes / (bw.TriadGBps * 1e9);
                b[c.Name] = new Dictionary<string, object?>
                {
                    ["step_seconds_median"] = total, ["achieved_gflops"] = FlopCounter.TrainStepFlops(spec, batch) / total / 1e9,
                    ["phases_seconds"] = phases, ["parameter_path_seconds"] = paramPath, ["parameter_path_bandwidth_limit_seconds"] = limit,
                    ["parameter_path_over_limit"] = paramPath / limit,
                    ["regions_seconds"] = x.Regions.ToDictionary(kv => kv.Key, kv => BenchCommand.Median(kv.Value)),
                };
                md.AppendLine($"### {c.Name}: step {total:F3} s (median of {x.Total.Count} repeats)").AppendLine();
                md.AppendLine("| phase | seconds |").AppendLine("|---|---|");
                foreach (var (k, v) in phases) md.AppendLine($"| {k} | {v:F4} |");
                md.AppendLine($"| parameter path (zero + widen + shadow + optimizer) | {paramPath:F4} = {paramPath / limit:F2}× the bandwidth limit {limit:F4} s ({bytes / 1e9:F2} GB at triad {bw.TriadGBps:F1} GB/s) |").AppendLine();
                if (x.Regions.Count > 0)
                {
                    md.AppendLine("| region (inclusive, summed over layers) | forward s | backward s |").AppendLine("|---|---|---|");
                    foreach (var region in x.Regions.Keys.Select(k => k[..k.LastIndexOf('.')]).Distinct().Order(StringComparer.Ordinal))
                        md.AppendLine($"| {region} | {BenchCommand.Median(x.Regions.GetValueOrDefault(region + ".forward", [double.NaN])):F4} | {BenchCommand.Median(x.Regions.GetValueOrDefault(region + ".backward", [double.NaN])):F4} |");
                    md.AppendLine();
                }
            }
            if (pytorch.Count > 0) md.AppendLine($"PyTorch peer: {BenchCommand.Median(pytorch):F3} s (median of {pytorch.Count} repeats)").AppendLine();
            report[$"batch_{batch}"] = b;
            Write(report, md, outDir, variantName, batches, steps, warmup, repeats, nThreads, device, flags, load, peak, bw, parameters, final: false);
        }

        if (rssSteps > 20)
        {
            var rss = new List<long>();
            using (var run = new SyntheticTraining(spec, batches[0], device, seed: 0))
                Progress($"RSS run, fp32, batch {batches[0]}", rssSteps, _ => { run.Step(); rss.Add(Environment.WorkingSet); });
            long at20 = rss[19], max = rss.Skip(19).Max();
            report["rss_steps"] = rssSteps;
            report["rss_mb_step20"] = at20 / 1e6;
            report["rss_mb_end"] = rss[^1] / 1e6;
            report["rss_growth_after_20"] = (double)(max - at20) / at20;
            md.AppendLine($"RSS over {rssSteps} fp32 steps at batch {batches[0]}: {at20 / 1e6:F0} MB at step 20, {rss[^1] / 1e6:F0} MB at the end, max growth {(double)(max - at20) / at20:P1}").AppendLine();
        }
        Write(report, md, outDir, variantName, batches, steps, warmup, repeats, nThreads, device, flags, load, peak, bw, parameters, final: true);
        return 0;
    }

    /// <summary>Writes bench-step.json and bench-step.md (after every batch size, so a long run leaves what it measured).</summary>
    static void Write(Dictionary<string, object?> report, StringBuilder md, string outDir, string variantName, int[] batches, int steps, int warmup, int repeats,
                      int nThreads, Device device, IReadOnlyList<string> flags, double load, double peak, MemoryBandwidth.Result bw, long parameters, bool final)
    {
        report["load_average_1min_end"] = LoadAverage();
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "bench-step.json"), JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
        var head = new StringBuilder()
            .AppendLine($"# bench step: {variantName}").AppendLine()
            .AppendLine($"- command: `jetpack bench step --variant {variantName} --batch {string.Join(',', batches)} --steps {steps} --warmup {warmup} --repeats {repeats}`")
            .AppendLine($"- {nThreads} threads, {device}; CPU flags: {string.Join(' ', flags)}; load average (1 min) {load:F1} at start, {LoadAverage():F1} at end")
            .AppendLine($"- fp32 GEMM peak {peak / 1e9:F1} GFLOP/s; C# memory bandwidth copy {bw.CopyGBps:F1} GB/s, triad {bw.TriadGBps:F1} GB/s")
            .AppendLine($"- parameters: {parameters:N0}").AppendLine();
        File.WriteAllText(Path.Combine(outDir, "bench-step.md"), head.ToString() + md);
        if (!final) return;
        AnsiConsole.WriteLine(head.ToString() + md);
        AnsiConsole.MarkupLine($"written: {Markup.Escape(Path.Combine(outDir, "bench-step.json"))}");
    }

    /// <summary>Warm-up, timed steps, then probed steps (regions) of one configuration, which is built and freed here.</summary>
    static (long Parameters, Measured Result) RunConfig(ModelSpec spec, int batch, Device device, Config c, int warmup, int steps, int probeSteps, string label,
                                                         bool optimizerOnly)
    {
        var m = new Measured();
        using var run = new SyntheticTraining(spec, batch, device, seed: 0, c.Precision, c.Fused);
        if (optimizerOnly) probeSteps = 0;
        Progress(label, warmup + steps + probeSteps, s =>
        {
            if (s < warmup) { if (optimizerOnly) run.TimedOptimizerStep(); else run.TimedStep(); return; }
            if (s < warmup + steps)
            {
                var t = optimizerOnly ? run.TimedOptimizerStep() : run.TimedStep();
                m.Total.Add(t.Total);
                Add(m.Phases, "zero_grad", t.ZeroGrad); Add(m.Phases, "shadow_sync", t.ShadowSync); Add(m.Phases, "forward", t.Forward);
                Add(m.Phases, optimizerOnly ? "bf16_widen" : "backward", t.Backward); Add(m.Phases, "optimizer", t.Optimizer); Add(m.Phases, "gc", t.Cleanup); // optimizer-only: backward slot = the widening pass
                return;
            }
            var probe = new RegionTimer();
            using (StepProbe.Attach(probe)) run.TimedStep();
            foreach (var (k, v) in probe.Seconds) Add(m.Regions, k, v);
        });
        return (run.ParameterCount, m);
    }

    static void Progress(string label, int total, Action<int> step) =>
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), maxValue: total);
                for (int s = 0; s < total; s++) { step(s); task.Increment(1); }
            });

    static void Add(Dictionary<string, List<double>> d, string k, double v)
    {
        if (!d.TryGetValue(k, out var l)) d[k] = l = [];
        l.Add(v);
    }

    static double LoadAverage()
    {
        try { return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture); }
        catch (IOException) { return double.NaN; }
    }

    /// <summary>Sums region times per step: "&lt;region&gt;.forward" and "&lt;region&gt;.backward", inclusive, over all layers.</summary>
    sealed class RegionTimer : IStepProbe
    {
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private readonly Dictionary<string, Stack<double>> open = [];
        public Dictionary<string, double> Seconds { get; } = [];

        public void ForwardBegin(string region) => Push(region + ".forward");
        public void ForwardEnd(string region) => Pop(region + ".forward");
        public void BackwardBegin(string region) => Push(region + ".backward");
        public void BackwardEnd(string region) => Pop(region + ".backward");

        void Push(string key)
        {
            if (!open.TryGetValue(key, out var s)) open[key] = s = new Stack<double>();
            s.Push(clock.Elapsed.TotalSeconds);
        }

        void Pop(string key)
        {
            if (!open.TryGetValue(key, out var s) || s.Count == 0) return;     // a backward end without a begin (no gradient reached the output)
            Seconds[key] = Seconds.GetValueOrDefault(key) + clock.Elapsed.TotalSeconds - s.Pop();
        }
    }
}
