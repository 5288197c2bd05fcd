using System.CommandLine;
using Spectre.Console;
using TorchSharp;
using Jetpack.Application.Runs;
using Jetpack.Application.Training;
using Jetpack.Coordinator.Jobs;
using Jetpack.Model.Checkpoints;
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
            0 => Run(Load(r.GetValue(Config)!), r.GetValue(Resume), r.GetValue(Until),
                     Devices.Parse(r.GetValue(CommonOptions.Device)!), r.GetValue(CommonOptions.Threads)),
            int n => TrainWorkers.Run(Load(r.GetValue(Config)!), r.GetValue(Resume), r.GetValue(Until), n,
                                      r.GetValue(CommonOptions.Device)!, r.GetValue(CommonOptions.Threads),
                                      dataPlane: CommonOptions.ParseDataPlane(r.GetValue(CommonOptions.DataPlane)!)),
        });
        return cmd;
    }

    /// <summary>Reads a YAML (.yaml/.yml) or JSON run spec in the job-spec dialect (snake_case, unknown fields are errors naming the field), then validates it.</summary>
    public static RunSpec Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config not found: {path}", path);
        var config = JobSpecReader.ParseAs<RunSpec>(File.ReadAllText(path), JobSpecReader.FormatOf(path), path, RunSpec.FieldsHint);
        config.Validate(path);
        return config with { Out = config.Out ?? RunSpec.DefaultOut };
    }

    public static int Run(RunSpec config, bool resume, long? until, TorchSharp.torch.Device device, int threads)
    {
        CommonOptions.ApplyThreads(threads);
        CpuBf16.WarnIfEmulated(config.Recipe.Precision, device);
        var spec = config.ResolveModel();
        var (train, eval) = RunDatasets.Open(config.Data, spec);
        torch.manual_seed((long)config.Recipe.Seed);
        using var model = ModelRegistry.Create(spec, device);
        if (config.Init is not null) ModelCheckpoint.Load(config.Init, spec, model);
        using var trainer = new Trainer(spec, model, train, config.Recipe, device);

        string outDir = config.Out ?? RunSpec.DefaultOut;
        Directory.CreateDirectory(outDir);
        string checkpoint = Path.Combine(outDir, "checkpoint"), metricsPath = Path.Combine(outDir, MetricsLog.FileName);
        if (resume && Directory.Exists(checkpoint))
        {
            trainer.Restore(checkpoint);
            AnsiConsole.MarkupLine($"resumed at step {trainer.Step} from {Markup.Escape(checkpoint)}");
        }
        AnsiConsole.MarkupLine($"[bold]{spec.Variant}[/]: {train.Count:N0} training images, {eval.Count:N0} eval, {config.Recipe.Steps} steps of {config.Recipe.GlobalBatch}{(config.Init is null ? ", from scratch" : $", from {Markup.Escape(config.Init)}")}");

        EvalResult? last = null;
        using (var metrics = MetricsLog.Open(metricsPath, trainer.Step))           // keeps the lines up to the restored step
            TrainProgressBar.Columns().Start(ctx =>
            {
                var bar = new TrainProgressBar(ctx.AddTask("training", maxValue: config.Recipe.Steps));
                new TrainingLoop(trainer, eval, TrainingCadence.Of(config, checkpoint), [metrics, bar]).Run(until);
                last = bar.LastEvaluation;
            });
        if (trainer.Step < config.Recipe.Steps)
        {
            AnsiConsole.MarkupLine($"stopped at step {trainer.Step} of {config.Recipe.Steps}: continue with --resume");
            return 0;
        }
        ModelCheckpoint.Save(Path.Combine(outDir, "final.safetensors"), spec, model);
        var plot = ConvergencePlot.Write(metricsPath, Path.Combine(outDir, "convergence.png"), spec.Variant);
        if (last is not null) AnsiConsole.MarkupLine($"final: top-1 [bold]{100 * last.Top1:F2}%[/], top-5 {100 * last.Top5:F2}%, eval loss {last.Loss:F4}");
        AnsiConsole.MarkupLine($"written: {Markup.Escape(outDir)}/final.safetensors, metrics.jsonl, {Markup.Escape(Path.GetFileName(plot))}, checkpoint/");
        return 0;
    }
}
