using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Spectre.Console;
using TorchSharp;
using Jetpack.GpuWorker.Jobs;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using Jetpack.Model.Registry;
using Jetpack.Model.Torch;
using Jetpack.Model.Training;

namespace Jetpack.Coordinator.Cli;

/// <summary>
/// <c>jetpack train --config FILE</c>: the single-process trainer with a live progress bar, metrics as
/// JSON lines, periodic checkpoints, exact resume (<c>--resume</c>) and a convergence plot.
/// </summary>
public static class TrainCommand
{
    static readonly Option<string> Config = new("--config") { Description = "training config (YAML or JSON; see README for the fields)", Required = true };
    static readonly Option<bool> Resume = new("--resume") { Description = "continue from <out>/checkpoint (exactly: same batches, augmentation, dropout, noise)" };
    static readonly Option<long?> Until = new("--until") { Description = "stop after this step (checkpoint written); continue later with --resume" };
    static readonly Option<int> Workers = new("--workers") { Description = "train with expert parallelism in N jetpack-worker processes on loopback (0 = in this process)", DefaultValueFactory = _ => 0 };

    public static Command Create()
    {
        var cmd = new Command("train", "Train a registered model (dense, Soft MoE or MoE Jetpack) from scratch or from a checkpoint (e.g. a recycled one), with the spec §7 recipe.")
        {
            Config, Resume, Until, Workers, CommonOptions.DataPlane, CommonOptions.Device, CommonOptions.Threads,
        };
        cmd.SetAction(r => r.GetValue(Workers) switch
        {
            < 0 => throw new ArgumentException($"--workers must be ≥ 0 (got {r.GetValue(Workers)})"),
            0 => Run(TrainConfig.Load(r.GetValue(Config)!), r.GetValue(Resume), r.GetValue(Until),
                     Devices.Parse(r.GetValue(CommonOptions.Device)!), r.GetValue(CommonOptions.Threads)),
            int n => TrainWorkers.Run(TrainConfig.Load(r.GetValue(Config)!), r.GetValue(Resume), r.GetValue(Until), n,
                                      r.GetValue(CommonOptions.Device)!, r.GetValue(CommonOptions.Threads),
                                      dataPlane: CommonOptions.ParseDataPlane(r.GetValue(CommonOptions.DataPlane)!)),
        });
        return cmd;
    }

    public static int Run(TrainConfig config, bool resume, long? until, TorchSharp.torch.Device device, int threads)
    {
        CommonOptions.ApplyThreads(threads);
        CpuBf16.WarnIfEmulated(config.Recipe.Precision, device);
        var spec = ModelRegistry.Get(config.Model);
        var (train, eval) = OpenData(config.Data);
        torch.manual_seed((long)config.Recipe.Seed);
        using var model = ModelRegistry.Create(spec, device);
        if (config.Init is not null) ModelCheckpoint.Load(config.Init, spec, model);
        using var trainer = new Trainer(spec, model, train, config.Recipe, device);

        Directory.CreateDirectory(config.Out);
        string checkpoint = Path.Combine(config.Out, "checkpoint"), metricsPath = Path.Combine(config.Out, "metrics.jsonl");
        var metrics = new List<string>();
        if (resume && Directory.Exists(checkpoint))
        {
            trainer.Restore(checkpoint);
            if (File.Exists(metricsPath))   // keep the lines up to the restored step
                metrics.AddRange(File.ReadAllLines(metricsPath).Where(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64() <= trainer.Step));
            AnsiConsole.MarkupLine($"resumed at step {trainer.Step} from {Markup.Escape(checkpoint)}");
        }
        File.WriteAllLines(metricsPath, metrics);
        AnsiConsole.MarkupLine($"[bold]{spec.Variant}[/]: {train.Count:N0} training images, {eval.Count:N0} eval, {config.Recipe.Steps} steps of {config.Recipe.GlobalBatch}{(config.Init is null ? ", from scratch" : $", from {Markup.Escape(config.Init)}")}");

        EvalResult? last = null;
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("training", maxValue: config.Recipe.Steps);
                task.Value = trainer.Step;
                using var log = File.AppendText(metricsPath);
                long stop = Math.Min(until ?? config.Recipe.Steps, config.Recipe.Steps);
                while (trainer.Step < stop)
                {
                    var clock = Stopwatch.StartNew();
                    var r = trainer.TrainStep();
                    double ips = r.Images / clock.Elapsed.TotalSeconds;
                    bool evalNow = r.Step % config.EvalEvery == 0 || r.Step == config.Recipe.Steps;
                    if (evalNow) last = trainer.Evaluate(eval, limit: r.Step == config.Recipe.Steps ? null : config.Data.EvalLimit);   // the final one on the whole split
                    log.WriteLine(JsonSerializer.Serialize(new
                    {
                        step = r.Step, loss = r.Loss, lr = r.LearningRate, grad_norm = double.IsFinite(r.GradNorm) ? r.GradNorm : (double?)null,
                        images_per_s = ips, eval_loss = evalNow ? last!.Loss : (double?)null,
                        top1 = evalNow ? last!.Top1 : (double?)null, top5 = evalNow ? last!.Top5 : (double?)null,
                    }));
                    log.Flush();
                    if (r.Step % config.CheckpointEvery == 0 || r.Step == stop) trainer.Save(checkpoint);
                    task.Description = $"step {r.Step} loss {r.Loss:F3} {(last is null ? "" : $"top-1 {100 * last.Top1:F1}% ")}{ips:F0} img/s";
                    task.Value = r.Step;
                }
            });
        if (trainer.Step < config.Recipe.Steps)
        {
            AnsiConsole.MarkupLine($"stopped at step {trainer.Step} of {config.Recipe.Steps}: continue with --resume");
            return 0;
        }
        ModelCheckpoint.Save(Path.Combine(config.Out, "final.safetensors"), spec, model);
        var plot = ConvergencePlot.Write(metricsPath, Path.Combine(config.Out, "convergence.png"), spec.Variant);
        if (last is not null) AnsiConsole.MarkupLine($"final: top-1 [bold]{100 * last.Top1:F2}%[/], top-5 {100 * last.Top5:F2}%, eval loss {last.Loss:F4}");
        AnsiConsole.MarkupLine($"written: {Markup.Escape(config.Out)}/final.safetensors, metrics.jsonl, {Markup.Escape(Path.GetFileName(plot))}, checkpoint/");
        return 0;
    }

    /// <summary>The run's data, opened by the one definition the workers use too (<see cref="JobData"/>).</summary>
    public static (IImageDataset Train, IImageDataset Eval) OpenData(TrainData d) => JobData.Open(ToJobData(d));

    public static JobDataSpec ToJobData(TrainData d) => new()
    {
        Dataset = d.Dataset, Root = d.Root, Classes = ProfileData.ParseClasses(d.Classes, "data.classes", ProfileData.ClassCount(d.Dataset))?.ToList(), MaxPerClass = d.MaxPerClass, Augment = d.Augment,
        RandAugment = d.RandAugment, RandomErasing = d.RandomErasing, CropMinScale = d.CropMinScale,
    };
}
