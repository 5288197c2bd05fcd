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
/// <c>jetpack bench</c>: the benchmark commands; <c>bench step</c> (<see cref="BenchStep"/>) times the
/// training step of the model core against this machine's GEMM peak and memory bandwidth and the same
/// step in PyTorch (Debian's python3-torch, bench/pytorch/train_step.py).
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var variant = new Option<string>("--model", "--variant") { Description = "the model benchmarked: " + Jetpack.Coordinator.Jobs.ModelArgument.Help, DefaultValueFactory = _ => "v_jetmoe_t" };
        var batch = new Option<string>("--batch") { Description = "images per step; a comma list runs each (e.g. 8,32)", DefaultValueFactory = _ => "8" };
        var steps = new Option<int>("--steps") { Description = "timed steps per configuration and repeat (median reported)", DefaultValueFactory = _ => 5 };
        var warmup = new Option<int>("--warmup") { Description = "untimed steps first", DefaultValueFactory = _ => 2 };
        var repeats = new Option<int>("--repeats") { Description = "rounds of all configurations side by side; ratios are medians over rounds", DefaultValueFactory = _ => 3 };
        var probeSteps = new Option<int>("--probe-steps") { Description = "steps with region timing (attention, MLP, routing, dispatch/combine, experts) in the first round", DefaultValueFactory = _ => 2 };
        var rssSteps = new Option<int>("--rss-steps") { Description = "length of the memory run, fp32, first batch size (0 = skip); growth is measured after step 20", DefaultValueFactory = _ => 0 };
        var python = new Option<string>("--python") { Description = "Python with torch for the PyTorch peer ('' = skip)", DefaultValueFactory = _ => "/usr/bin/python3" };
        var configs = new Option<string>("--configs") { Description = $"comma list of configurations to run ({string.Join(", ", BenchStep.ConfigNames)}); all by default", DefaultValueFactory = _ => "" };
        var optimizerOnly = new Option<bool>("--optimizer-only") { Description = "time only the parameter path (zeroing, bf16 widening/shadow copy, optimizer) on fixed random gradients, no forward/backward and no PyTorch peer" };
        var output = new Option<string>("--out") { Description = "folder for bench-step.json and bench-step.md", DefaultValueFactory = _ => "results/bench" };
        var step = new Command("step", "Where a training step's time goes (default V-JetMoE-T, 224², batch 8): phases (zero, bf16 shadow, forward, backward, optimizer), regions (attention, MLP, MoE routing, dispatch/combine, experts), the parameter path against the C# memory bandwidth, fp32/bf16 with the fused and the torch-ops optimizer, and the ratio to PyTorch, side by side in one run; RSS over a long run.")
        {
            variant, batch, steps, warmup, repeats, probeSteps, rssSteps, configs, optimizerOnly, python, output, CommonOptions.Device, CommonOptions.Threads,
        };
        step.SetAction(r =>
        {
            var batches = r.GetValue(batch)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(x => int.TryParse(x, out int v) && v > 0 ? v : throw new ArgumentException($"--batch: '{x}' is not a positive integer")).ToArray();
            var only = r.GetValue(configs)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (only.FirstOrDefault(c => !BenchStep.ConfigNames.Contains(c)) is { } unknown)
                throw new ArgumentException($"--configs: unknown configuration '{unknown}' (known: {string.Join(", ", BenchStep.ConfigNames)})");
            return BenchStep.Run(r.GetValue(variant)!, batches, r.GetValue(steps), r.GetValue(warmup), Math.Max(1, r.GetValue(repeats)), r.GetValue(probeSteps),
                                 r.GetValue(rssSteps), r.GetValue(python)!, r.GetValue(output)!, Devices.Parse(r.GetValue(CommonOptions.Device)!), r.GetValue(CommonOptions.Threads),
                                 only.Length == 0 ? null : only, r.GetValue(optimizerOnly));
        });
        return new Command("bench", "Benchmarks (commands, not tests): ratios measured side by side in one run.") { step, BenchRecycle.Create(), BenchTrain.Create(), BenchExchange.Create(), BenchData.Create(), BenchScaling.Create() };
    }

    /// <summary>fp32 GEMM throughput of this device: 2048² matmul, median of 10 after 3 warm-ups.</summary>
    internal static double MeasureGemmPeak(Device device)
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

    internal static (double Seconds, string Version)? RunPyTorchPeer(string python, string variant, Model.Models.ModelSpec spec, int batch, int steps, int warmup, int threads)
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

    /// <summary>The median (the mean of the middle two for an even count); NaN for none.</summary>
    internal static double Median(IEnumerable<double> xs)
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
