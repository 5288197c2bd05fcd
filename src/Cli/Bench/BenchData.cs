using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Spectre.Console;
using static TorchSharp.torch;
using Jetpack.Application.Runs;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using Jetpack.Model.Data.Fixtures;

namespace Jetpack.Cli.Bench;

/// <summary>
/// <c>jetpack bench data</c> (issue 18): images/s of the input pipeline on a class-folder tree — train
/// (RandomResizedCrop + flip, RandAugment off and on) and eval (resize + centre crop), JPEG decode included —
/// beside the PyTorch peer in the same run (torchvision ImageFolder + PIL + DataLoader, the same
/// transforms, files and number of cores: bench/pytorch/data_pipeline.py). Per core = images/s ÷ workers;
/// torch runs one intra-op thread, so the workers are the cores used.
/// </summary>
public static class BenchData
{
    public static Command Create()
    {
        var root = new Option<string>("--root") { Description = "a class-folder tree in ImageNet layout (train/ is read; with --generate, written here first if missing)", Required = true };
        var workers = new Option<int>("--workers") { Description = "decode threads (jetpack) and DataLoader worker processes (PyTorch)", DefaultValueFactory = _ => 2 };
        var size = new Option<int>("--size") { Description = "output side", DefaultValueFactory = _ => 224 };
        var batch = new Option<int>("--batch") { Description = "images per batch", DefaultValueFactory = _ => 32 };
        var seconds = new Option<double>("--seconds") { Description = "measured time per pipeline and mode", DefaultValueFactory = _ => 10 };
        var generate = new Option<int>("--generate") { Description = "images per class of a generated ImageNet-like tree (10 classes, 160–800 px) written to --root if it does not exist; 0 = never", DefaultValueFactory = _ => 0 };
        var python = new Option<string>("--python") { Description = "Python with torchvision for the PyTorch peer ('' = skip)", DefaultValueFactory = _ => "/usr/bin/python3" };
        var output = new Option<string>("--out") { Description = "folder for bench-data.json / .md", DefaultValueFactory = _ => "results/bench-data" };
        var cmd = new Command("data", "Input-pipeline images/s (train with and without RandAugment, eval) per core, beside torchvision's DataLoader on the same files and cores.")
        {
            root, workers, size, batch, seconds, generate, python, output,
        };
        cmd.SetAction(r => Run(r.GetValue(root)!, r.GetValue(workers), r.GetValue(size), r.GetValue(batch), r.GetValue(seconds),
                               r.GetValue(generate), r.GetValue(python)!, r.GetValue(output)!));
        return cmd;
    }

    static int Run(string root, int workers, int size, int batch, double seconds, int generate, string python, string outDir)
    {
        if (workers < 1 || batch < 1 || size < 8 || seconds <= 0) throw new ArgumentException("--workers, --batch must be ≥ 1, --size ≥ 8, --seconds > 0");
        if (!Directory.Exists(Path.Combine(root, "train")))
        {
            if (generate <= 0) throw new DirectoryNotFoundException($"--root: {root}/train does not exist (give --generate N to write a generated tree there)");
            AnsiConsole.MarkupLine($"writing a generated tree: 10 classes × {generate} images to {Markup.Escape(root)} …");
            ImageTreeGenerator.Write(root, classes: 10, trainPerClass: generate, valPerClass: 2, seed: 18);
        }
        set_num_threads(1);
        var report = new Dictionary<string, object?>
        {
            ["root"] = Path.GetFullPath(root), ["workers"] = workers, ["size"] = size, ["batch"] = batch, ["seconds"] = seconds,
            ["cpu_flags"] = CpuFlags(), ["load_1min_at_start"] = LoadAverage(),
        };
        var index = ImageFolderIndex.Build(Path.Combine(root, "train"));
        report["images"] = index.Images.Count;
        foreach (var mode in new[] { "train", "train_ra", "eval" })
        {
            double ours = mode == "eval" ? EvalRate(index, size, batch, workers, seconds) : TrainRate(root, mode == "train_ra", size, batch, workers, seconds);
            report[$"{mode}_images_per_s"] = ours;
            report[$"{mode}_images_per_s_per_core"] = ours / workers;
            AnsiConsole.MarkupLine($"jetpack {mode}: {ours:F1} images/s ({ours / workers:F1} per core)");
            if (python.Length > 0 && PyTorchRate(python, Path.Combine(root, "train"), mode, workers, size, batch, seconds) is { } peer)
            {
                report[$"pytorch_{mode}_images_per_s"] = peer;
                report[$"pytorch_{mode}_images_per_s_per_core"] = peer / workers;
                report[$"{mode}_ratio_to_pytorch_per_core"] = ours / peer;
                AnsiConsole.MarkupLine($"pytorch {mode}: {peer:F1} images/s ({peer / workers:F1} per core); jetpack ÷ pytorch = [bold]{ours / peer:F2}×[/] (goal ≥ 1.5×)");
            }
        }
        report["eval_over_train"] = (double)report["eval_images_per_s"]! / (double)report["train_images_per_s"]!;
        report["load_1min_at_end"] = LoadAverage();

        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "bench-data.json"), JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
        File.WriteAllLines(Path.Combine(outDir, "bench-data.md"),
            ["| measure | value |", "|---|---|", .. report.Select(kv => $"| {kv.Key} | {(kv.Value is double d ? d.ToString("G4") : kv.Value)} |")]);
        AnsiConsole.MarkupLine($"eval ÷ train: [bold]{(double)report["eval_over_train"]!:F2}×[/] (goal ≥ 2×); written: {Markup.Escape(outDir)}/bench-data.json, bench-data.md");
        return 0;
    }

    // The training pipeline of a run (RunDatasets, imagefolder): scaled decode + RandomResizedCrop + flip (+ RandAugment), batches of `batch`.
    static double TrainRate(string root, bool randAugment, int size, int batch, int workers, double seconds)
    {
        var data = new RunData { Dataset = "imagefolder", Root = root, ImageSize = size, RandAugment = randAugment, RandomErasing = false, Workers = workers, MaxBadFraction = 0.5 };
        var (train, _) = RunDatasets.Open(data);
        var seeded = (ISeededBatches)train;
        var sampler = new DistributedSampler(train.Count, Math.Min(batch, train.Count), seed: 1);
        long step = 0;
        return Rate(() =>
        {
            var indices = sampler.GlobalBatchAt(step / sampler.StepsPerEpoch, (int)(step % sampler.StepsPerEpoch));
            var (images, labels) = seeded.Batch(indices, (ulong)step++);
            images.Dispose(); labels.Dispose();
            return indices.Length;
        }, seconds);
    }

    // Eval: resize + centre crop (scaled decode), batches built by `workers` BatchLoader threads.
    static double EvalRate(ImageFolderIndex index, int size, int batch, int workers, double seconds)
    {
        var set = new ImageFolderDataset(index, EvalTransform.ImageNet(size), new BadFiles(index.Images.Count, 0.5));
        var order = new DistributedSampler(set.Count, 1, seed: 2).Permutation(0);
        return Rate(() =>
        {
            int n = 0;
            foreach (var b in new BatchLoader(set, order, batch, workers, prefetch: 2 * workers)) { n += (int)b.Labels.shape[0]; b.Dispose(); }
            return n;
        }, seconds);
    }

    // Runs `work` (returning images made) once as warm-up, then until `seconds` have passed.
    static double Rate(Func<int> work, double seconds)
    {
        work();
        var clock = Stopwatch.StartNew();
        long images = 0;
        while (clock.Elapsed.TotalSeconds < seconds) images += work();
        return images / clock.Elapsed.TotalSeconds;
    }

    static double? PyTorchRate(string python, string trainRoot, string mode, int workers, int size, int batch, double seconds)
    {
        var script = RepoFiles.Find("bench/pytorch/data_pipeline.py");
        if (script is null || !File.Exists(python))
        {
            AnsiConsole.MarkupLine($"[yellow]PyTorch peer skipped[/]: {(script is null ? "bench/pytorch/data_pipeline.py not found" : $"{python} not found")}");
            return null;
        }
        var psi = new ProcessStartInfo(python)
        {
            ArgumentList = { script, "--root", trainRoot, "--workers", $"{workers}", "--size", $"{size}", "--batch", $"{batch}", "--seconds", $"{seconds}", "--mode", mode },
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"PyTorch data peer failed (exit {p.ExitCode}): {stderr.Result}");
        using var doc = JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last());
        return doc.RootElement.GetProperty("images_per_s").GetDouble();
    }

    static string CpuFlags()
    {
        if (!File.Exists("/proc/cpuinfo")) return "";
        var flags = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) ?? "";
        return string.Join(" ", flags.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Where(f => f == "avx2" || f.StartsWith("avx512", StringComparison.Ordinal) || f.StartsWith("amx", StringComparison.Ordinal)).Distinct().Order());
    }

    static double LoadAverage() => File.Exists("/proc/loadavg") ? double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) : double.NaN;
}
