using Jetpack.Application.Training;
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using SkiaSharp;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using Jetpack.Model.Registry;
using Jetpack.Model.Torch;
using Jetpack.Model.Training;
using Jetpack.Cli.CommandLine;
using Jetpack.Cli.Runs;
using Jetpack.Application.Runs;
using Jetpack.Model.Data.Fixtures;
using Jetpack.Model.Models;

namespace Jetpack.Cli.Bench;

/// <summary>
/// <c>jetpack bench train</c> (issue 4 §5): the real trainer on augmented Fashion-MNIST for a long run
/// (RSS after warm-up must stay within 5%), and whether the input pipeline keeps up: one core of
/// decode + train augmentation against the trainer's images/s, at 28² and at 224² (JPEG), measured
/// in the same run; and the real Trainer on the 224² model from JPEG class folders: the share of each
/// step spent waiting for its batch (issue 18).
/// </summary>
public static class BenchTrain
{
    public static Command Create()
    {
        var variant = new Option<string>("--variant") { Description = "model trained on Fashion-MNIST", DefaultValueFactory = _ => "v_jetmoe_fmnist" };
        var steps = new Option<int>("--steps") { Description = "training steps (RSS is sampled after every step)", DefaultValueFactory = _ => 2000 };
        var warmup = new Option<int>("--warmup") { Description = "steps before the RSS reference point", DefaultValueFactory = _ => 200 };
        var batch = new Option<int>("--batch") { Description = "images per step", DefaultValueFactory = _ => 64 };
        var bigVariant = new Option<string>("--jpeg-variant") { Description = "the 224² model whose step speed the JPEG pipeline is compared with ('' = skip)", DefaultValueFactory = _ => "v_jetmoe_t" };
        var jpegSteps = new Option<int>("--jpeg-steps")
        {
            Description = "steps of the real Trainer on the 224² model from a generated ImageNet-like JPEG tree (imagefolder, 2 decode workers, prefetch 2), " +
                          "for the share of step time spent waiting for batches (issue 18: ≤ 5 %); 0 = skip",
            DefaultValueFactory = _ => 12,
        };
        var jpegBatch = new Option<int>("--jpeg-batch") { Description = "images per step of that run", DefaultValueFactory = _ => 32 };
        var output = new Option<string>("--out") { Description = "folder for bench-train.json / .md and rss.png", DefaultValueFactory = _ => "results/bench" };
        var cmd = new Command("train", "Long run of the real trainer (augmented Fashion-MNIST): RSS growth after warm-up, and input-pipeline images/s per core against the trainer's images/s (28² and 224² JPEG).")
        {
            variant, steps, warmup, batch, bigVariant, jpegSteps, jpegBatch, output, CommonOptions.Device, CommonOptions.Threads,
        };
        cmd.SetAction(r => Run(r.GetValue(variant)!, r.GetValue(steps), r.GetValue(warmup), r.GetValue(batch), r.GetValue(bigVariant)!,
                               r.GetValue(jpegSteps), r.GetValue(jpegBatch), r.GetValue(output)!, Devices.Parse(r.GetValue(CommonOptions.Device)!), r.GetValue(CommonOptions.Threads)));
        return cmd;
    }

    static int Run(string variantName, int steps, int warmup, int batch, string bigVariant, int jpegSteps, int jpegBatch, string outDir, Device device, int threads)
    {
        if (warmup >= steps) throw new ArgumentException($"--warmup ({warmup}) must be below --steps ({steps})");
        if (jpegSteps is < 0 or 1) throw new ArgumentException($"--jpeg-steps must be 0 (skip) or at least 2 (the first step is left out), got {jpegSteps}");
        if (jpegBatch < 1) throw new ArgumentException($"--jpeg-batch must be at least 1, got {jpegBatch}");
        CommonOptions.ApplyThreads(threads);
        var spec = ModelRegistry.Get(variantName);
        var data = IdxDataset.OpenSplit(IdxDataset.FashionMnistDirectory, "train", ProfileData.FashionMnistEval(), new IdxOptions());
        var train = new AugmentedDataset(data, new TrainTransform(AugmentOptions.FashionMnist()));
        var report = new Dictionary<string, object?> { ["variant"] = variantName, ["batch"] = batch, ["steps"] = steps, ["threads"] = get_num_threads() };

        // 1. Pipeline alone, one thread: what one core of augmentation delivers (28²).
        report["pipeline_28_images_per_s_per_core"] = PipelineRate(() => { using var scope = NewDisposeScope(); train.Batch(Enumerable.Range(0, batch).ToArray(), 7); }, batch);

        // 2. The long run: the real Trainer (augmentation included), RSS after each step.
        var rss = new List<double>();
        var stepSeconds = new List<double>();
        var managed = new List<double>();
        torch.manual_seed(0);
        using (var model = ModelRegistry.Create(spec, device))
        using (var trainer = new Trainer(spec, model, train, new TrainerOptions { Steps = steps, GlobalBatch = batch, WarmupSteps = 10 }, device))
        {
            TrainProgressBar.Columns().Start(ctx =>
            {
                // the one loop, with no evaluation and no checkpoints: memory is sampled after every step
                var memory = new MemoryTrace(stepSeconds, rss, managed);
                var bar = new TrainProgressBar(ctx.AddTask($"{variantName}: {steps} steps of {batch}", maxValue: steps), $"{variantName}: ");
                new TrainingLoop(trainer, eval: null, new TrainingCadence(EvalEvery: int.MaxValue, EvalLimit: null, CheckpointEvery: int.MaxValue, CheckpointDir: null),
                                 [memory, bar]).Run();
            });
        }
        double trainerRate = batch / Median(stepSeconds.Skip(warmup));
        double atWarmup = rss[warmup - 1], max = rss.Skip(warmup).Max();
        report["trainer_images_per_s"] = trainerRate;
        report["rss_mb_at_warmup"] = atWarmup;
        report["rss_mb_max_after_warmup"] = max;
        report["rss_mb_end"] = rss[^1];
        report["rss_growth_after_warmup"] = (max - atWarmup) / atWarmup;
        report["managed_heap_mb_at_warmup"] = managed[warmup - 1];
        report["managed_heap_mb_end"] = managed[^1];
        report["gen2_collections"] = GC.CollectionCount(2);
        report["cores_of_augmentation_needed_28"] = trainerRate / (double)report["pipeline_28_images_per_s_per_core"]!;

        // 3. 224² JPEG decode + the ImageNet train transform, one thread, against the 224² model's step.
        if (bigVariant.Length > 0)
        {
            var jpegRate = JpegPipelineRate();
            var bigSpec = ModelRegistry.Get(bigVariant);
            var bigTimes = new List<double>();
            using (var run = new SyntheticTraining(bigSpec, 8, device, seed: 0))
                for (int s = 0; s < 4; s++) { var c = Stopwatch.StartNew(); run.Step(); if (s > 0) bigTimes.Add(c.Elapsed.TotalSeconds); }
            double bigRate = 8 / Median(bigTimes);
            report["pipeline_224_jpeg_images_per_s_per_core"] = jpegRate;
            // SyntheticTraining's step (random images, no data pipeline), not the Trainer: labelled so
            report[$"synthetic_step_{bigVariant}_images_per_s"] = bigRate;
            report["cores_of_augmentation_needed_224"] = bigRate / jpegRate;
            if (jpegSteps > 0) StepStall(bigVariant, bigSpec, jpegSteps, jpegBatch, device, report);
        }

        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "bench-train.json"), JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
        File.WriteAllLines(Path.Combine(outDir, "bench-train.md"),
            ["| measure | value |", "|---|---|", .. report.Select(kv => $"| {kv.Key} | {(kv.Value is double d ? d.ToString("G4") : kv.Value)} |")]);
        PlotRss(rss, warmup, Path.Combine(outDir, "rss.png"), variantName);
        var table = new Table().AddColumns("measure", "value");
        foreach (var (k, v) in report) table.AddRow(k, v is double d ? $"{d:G4}" : $"{v}");
        AnsiConsole.Write(table);
        if (report.TryGetValue("jpeg_run_data_wait_share", out var share) && share is double waitShare)
            AnsiConsole.MarkupLine($"{bigVariant} from JPEGs: steps waited [bold]{100 * waitShare:F2}%[/] of their time for data (goal ≤ 5%): {(waitShare <= 0.05 ? "[green]met[/]" : "[red]missed[/]")}");
        double growth = (double)report["rss_growth_after_warmup"]!;
        AnsiConsole.MarkupLine($"RSS growth after step {warmup}: [bold]{100 * growth:F2}%[/] (target ≤ 5%): {(growth <= 0.05 ? "[green]flat[/]" : "[red]grows[/]")}");
        AnsiConsole.MarkupLine($"written: {Markup.Escape(outDir)}/bench-train.json, bench-train.md, rss.png");
        return 0;
    }

    /// <summary>
    /// The real Trainer on the 224² model, fed from a generated ImageNet-like class-folder tree through the run's own data
    /// path (RunDatasets: index, decode workers, augmentation, prefetch queue): how long each step waited for its batch.
    /// The decode threads share the cores with the step, as they would on a CPU worker. The first step (nothing
    /// prefetched yet) is reported apart.
    /// </summary>
    static void StepStall(string name, ModelSpec spec, int steps, int batch, Device device, Dictionary<string, object?> report)
    {
        var tree = Directory.CreateTempSubdirectory("jetpack-stall-");
        try
        {
            int perClass = (steps * batch + 9) / 10 + 1;
            AnsiConsole.MarkupLine($"writing {10 * perClass} generated JPEGs for the step-stall run…");
            ImageTreeGenerator.Write(tree.FullName, classes: 10, trainPerClass: perClass, valPerClass: 1, maxSide: 640);
            var data = new RunData { Dataset = "imagefolder", Root = tree.FullName, MaxBadFraction = 0.05 };   // the tree's quirk files include 2 bad ones
            var (train, _) = RunDatasets.Open(data, spec);
            var reports = new List<StepReport>();
            torch.manual_seed(0);
            using (var model = ModelRegistry.Create(spec, device))
            using (var trainer = new Trainer(spec, model, train, new TrainerOptions { Steps = steps, GlobalBatch = batch, WarmupSteps = 1 }, device, prefetch: data.Prefetch))
            {
                TrainProgressBar.Columns().Start(ctx =>
                {
                    var bar = new TrainProgressBar(ctx.AddTask($"{name}: {steps} steps of {batch} JPEGs", maxValue: steps), $"{name}: ");
                    new TrainingLoop(trainer, eval: null, new TrainingCadence(EvalEvery: int.MaxValue, EvalLimit: null, CheckpointEvery: int.MaxValue, CheckpointDir: null),
                                     [new StepRecorder(reports), bar]).Run();
                });
            }
            var timed = reports.Skip(1).ToList();
            report["jpeg_run_batch"] = batch;
            report["jpeg_run_data_workers"] = data.Workers;
            report["jpeg_run_first_step_wait_s"] = reports[0].DataWaitSeconds;
            report["jpeg_run_step_s_median"] = Median(timed.Select(r => r.Seconds));
            report["jpeg_run_data_wait_s_total"] = timed.Sum(r => r.DataWaitSeconds);
            report["jpeg_run_data_wait_share"] = timed.Sum(r => r.DataWaitSeconds) / timed.Sum(r => r.Seconds);
            report["jpeg_run_data_wait_share_worst_step"] = timed.Max(r => r.DataWaitShare);
        }
        finally { tree.Delete(recursive: true); }
    }

    /// <summary>Images/s of <paramref name="makeBatch"/> on one torch thread (warm-up first).</summary>
    static double PipelineRate(Action makeBatch, int batch)
    {
        int saved = get_num_threads();
        set_num_threads(1);
        try
        {
            makeBatch();
            var clock = Stopwatch.StartNew();
            int n = 0;
            while (clock.Elapsed.TotalSeconds < 3) { makeBatch(); n += batch; }
            return n / clock.Elapsed.TotalSeconds;
        }
        finally { set_num_threads(saved); }
    }

    /// <summary>JPEG decode + ImageNet train transform at 224², one thread, on ImageNet-sized JPEGs written here.</summary>
    static double JpegPipelineRate()
    {
        var dir = Directory.CreateTempSubdirectory("jetpack-jpeg-");
        try
        {
            (int W, int H)[] sizes = [(500, 375), (375, 500), (640, 480), (500, 333)];
            var files = sizes.Select((s, i) => WriteJpeg(Path.Combine(dir.FullName, $"img{i}.jpg"), s.W, s.H, i)).ToArray();
            var transform = new TrainTransform(AugmentOptions.ImageNet(224));
            int k = 0;
            return PipelineRate(() =>
            {
                for (int j = 0; j < 8; j++, k++)
                {
                    using var encoded = EncodedImage.Read(files[k % files.Length]);     // scaled decode where the crop allows (issue 18)
                    using (transform.Apply(encoded, AugmentRandom.SampleSeed(3407, 0, k))) { }
                }
            }, 8);
        }
        finally { dir.Delete(recursive: true); }
    }

    static string WriteJpeg(string path, int w, int h, int seed)
    {
        using var bitmap = new SKBitmap(w, h, SKColorType.Rgba8888, SKAlphaType.Premul);
        var rng = new Random(seed);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)   // smooth gradients plus noise, like photographs in their cost to decode
                bitmap.SetPixel(x, y, new SKColor((byte)(x * 255 / w), (byte)(y * 255 / h), (byte)rng.Next(256)));
        using var image = SKImage.FromBitmap(bitmap);
        using var encoded = image.Encode(SKEncodedImageFormat.Jpeg, 95);
        File.WriteAllBytes(path, encoded.ToArray());
        return path;
    }

    static void PlotRss(List<double> rss, int warmup, string path, string title)
    {
        var plot = new ScottPlot.Plot();
        var line = plot.Add.Scatter(Enumerable.Range(1, rss.Count).Select(i => (double)i).ToArray(), rss.ToArray());
        line.MarkerSize = 0;
        line.LegendText = "RSS (MB)";
        var v = plot.Add.VerticalLine(warmup);
        v.LegendText = "end of warm-up";
        plot.Axes.Bottom.Label.Text = "step";
        plot.Axes.Left.Label.Text = "RSS (MB)";
        plot.Axes.SetLimitsY(0, rss.Max() * 1.1);
        plot.Title($"{title}: resident memory over a long run");
        plot.ShowLegend();
        plot.SavePng(path, 900, 450);
    }

    static double Median(IEnumerable<double> xs) => BenchCommand.Median(xs);
}

/// <summary>Every step's report, in order.</summary>
sealed class StepRecorder(List<StepReport> reports) : ITrainingObserver
{
    public void OnStep(StepReport r) => reports.Add(r);
}

/// <summary>Step time, RSS and managed heap after every step of `bench train`'s run (MB).</summary>
sealed class MemoryTrace(List<double> stepSeconds, List<double> rss, List<double> managed) : ITrainingObserver
{
    public void OnStep(StepReport r)
    {
        stepSeconds.Add(r.Seconds);
        rss.Add(Environment.WorkingSet / 1e6);
        managed.Add(GC.GetTotalMemory(forceFullCollection: false) / 1e6);
    }
}
