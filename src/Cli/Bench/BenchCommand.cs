using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Registry;
using Jetpack.Model.Torch;
using Jetpack.Cli.CommandLine;
using Jetpack.Cli.Runs;

namespace Jetpack.Cli.Bench;

/// <summary>
/// <c>jetpack bench step</c>: the training-step benchmark of the model core, measured side by side in
/// one run: this machine's fp32 GEMM peak, the C# step, the same step in PyTorch (Debian's
/// python3-torch, bench/pytorch/train_step.py), and RSS over a long run.
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var variant = new Option<string>("--variant") { Description = "registered model variant", DefaultValueFactory = _ => "v_jetmoe_t" };
        var batch = new Option<int>("--batch") { Description = "images per step", DefaultValueFactory = _ => 8 };
        var steps = new Option<int>("--steps") { Description = "timed steps (median reported)", DefaultValueFactory = _ => 10 };
        var warmup = new Option<int>("--warmup") { Description = "untimed steps first", DefaultValueFactory = _ => 2 };
        var rssSteps = new Option<int>("--rss-steps") { Description = "length of the memory run (0 = skip); growth is measured after step 20", DefaultValueFactory = _ => 200 };
        var python = new Option<string>("--python") { Description = "Python with torch for the PyTorch peer ('' = skip)", DefaultValueFactory = _ => "/usr/bin/python3" };
        var output = new Option<string>("--out") { Description = "folder for bench-step.json and bench-step.md", DefaultValueFactory = _ => "results/bench" };
        var step = new Command("step", "Time forward + backward + AdamW of a model (default V-JetMoE-T, 224², batch 8): fraction of the measured fp32 GEMM peak, ratio to PyTorch in the same run, RSS growth over a long run.")
        {
            variant, batch, steps, warmup, rssSteps, python, output, CommonOptions.Device, CommonOptions.Threads,
        };
        step.SetAction(r => RunStep(r.GetValue(variant)!, r.GetValue(batch), r.GetValue(steps), r.GetValue(warmup), r.GetValue(rssSteps),
                                     r.GetValue(python)!, r.GetValue(output)!, r.GetValue(CommonOptions.Device)!, r.GetValue(CommonOptions.Threads)));
        return new Command("bench", "Benchmarks (commands, not tests): ratios measured side by side in one run.") { step, BenchRecycle.Create(), BenchTrain.Create(), BenchExchange.Create() };
    }

    static int RunStep(string variantName, int batch, int steps, int warmup, int rssSteps, string python, string outDir,
                       string deviceSpec, int threads)
    {
        var spec = ModelRegistry.Get(variantName);
        var device = Devices.Parse(deviceSpec);
        CommonOptions.ApplyThreads(threads);
        int nThreads = torch.get_num_threads();

        AnsiConsole.MarkupLine($"[bold]bench step[/] {variantName}, batch {batch}, {nThreads} threads, {device}");
        double peak = MeasureGemmPeak(device);
        AnsiConsole.MarkupLine($"fp32 GEMM peak (2048², median of 10): [bold]{peak / 1e9:F1} GFLOP/s[/]");

        var times = new List<double>();
        var rss = new List<long>();
        long parameters;
        using (var run = new SyntheticTraining(spec, batch, device, seed: 0))
        {
            parameters = run.ParameterCount;
            int total = Math.Max(warmup + steps, rssSteps);
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask($"C# steps ({total})", maxValue: total);
                    for (int s = 1; s <= total; s++)
                    {
                        var sw = Stopwatch.StartNew();
                        run.Step();
                        if (s > warmup && s <= warmup + steps) times.Add(sw.Elapsed.TotalSeconds);
                        rss.Add(Environment.WorkingSet);
                        task.Increment(1);
                    }
                });
        }
        double median = Median(times);
        double flops = FlopCounter.TrainStepFlops(spec, batch);
        var report = new Dictionary<string, object?>
        {
            ["variant"] = variantName, ["batch"] = batch, ["threads"] = nThreads, ["device"] = device.ToString(),
            ["parameters"] = parameters, ["gemm_peak_gflops"] = peak / 1e9,
            ["csharp_step_seconds_median"] = median, ["train_step_gflop"] = flops / 1e9,
            ["achieved_gflops"] = flops / median / 1e9, ["fraction_of_peak"] = flops / median / peak,
        };
        if (rssSteps > 20 && rss.Count >= rssSteps)
        {
            long at20 = rss[19], end = rss[^1], max = rss.Skip(19).Max();
            report["rss_mb_step20"] = at20 / 1e6;
            report["rss_mb_end"] = end / 1e6;
            report["rss_mb_max_after_20"] = max / 1e6;
            report["rss_growth_after_20"] = (double)(max - at20) / at20;
        }

        if (python.Length > 0)
        {
            var py = RunPyTorchPeer(python, variantName, spec, batch, steps, warmup, nThreads);
            if (py is not null)
            {
                report["pytorch_step_seconds_median"] = py.Value.Seconds;
                report["pytorch_version"] = py.Value.Version;
                report["ratio_csharp_over_pytorch"] = median / py.Value.Seconds;
            }
        }

        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "bench-step.json"), JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
        var table = new Table().AddColumns("measure", "value");
        foreach (var (k, v) in report) table.AddRow(k, v is double d ? $"{d:G4}" : $"{v}");
        AnsiConsole.Write(table);
        File.WriteAllLines(Path.Combine(outDir, "bench-step.md"),
            ["| measure | value |", "|---|---|", .. report.Select(kv => $"| {kv.Key} | {(kv.Value is double d ? d.ToString("G4") : kv.Value)} |")]);
        AnsiConsole.MarkupLine($"written: {Markup.Escape(Path.Combine(outDir, "bench-step.json"))}");
        return 0;
    }

    /// <summary>fp32 GEMM throughput of this device: 2048² matmul, median of 10 after 3 warm-ups.</summary>
    static double MeasureGemmPeak(Device device)
    {
        const int n = 2048;
        using var scope = NewDisposeScope();
        var a = torch.randn(n, n, device: device);
        var b = torch.randn(n, n, device: device);
        var times = new List<double>();
        for (int i = 0; i < 13; i++)
        {
            var sw = Stopwatch.StartNew();
            using (var c = a.matmul(b)) c.sum().item<float>();             // item() syncs the device
            if (i >= 3) times.Add(sw.Elapsed.TotalSeconds);
        }
        return 2.0 * n * n * n / Median(times);
    }

    static (double Seconds, string Version)? RunPyTorchPeer(string python, string variant, Model.Models.ModelSpec spec, int batch, int steps, int warmup, int threads)
    {
        string model = variant switch { "v_jetmoe_t" => "vjetmoe_t", "vit_tiny_patch16_224" => "vit_tiny", _ => "" };
        var script = RepoFiles.Find("bench/pytorch/train_step.py");
        if (model.Length == 0 || script is null || !File.Exists(python))
        {
            AnsiConsole.MarkupLine($"[yellow]PyTorch peer skipped[/]: {(model.Length == 0 ? $"no PyTorch twin for {variant}" : script is null ? "bench/pytorch/train_step.py not found" : $"{python} not found")}");
            return null;
        }
        AnsiConsole.MarkupLine($"running the PyTorch peer: {Markup.Escape(python)} {Markup.Escape(script)} …");
        var psi = new ProcessStartInfo(python)
        {
            ArgumentList = { script, "--model", model, "--batch", $"{batch}", "--image-size", $"{spec.Vit!.ImageSize}",
                             "--steps", $"{steps}", "--warmup", $"{warmup}", "--threads", $"{threads}" },
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"PyTorch peer failed (exit {p.ExitCode}): {stderr.Result}");
        var line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
        using var doc = JsonDocument.Parse(line);
        return (doc.RootElement.GetProperty("step_seconds_median").GetDouble(), doc.RootElement.GetProperty("torch").GetString() ?? "?");
    }

    static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length == 0 ? double.NaN : s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}

/// <summary>Finds files of this repository (scripts, fixtures) from the binary's location or the working directory.</summary>
public static class RepoFiles
{
    public static string? Find(string relative)
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, relative);
                if (File.Exists(candidate)) return candidate;
            }
        return null;
    }
}
