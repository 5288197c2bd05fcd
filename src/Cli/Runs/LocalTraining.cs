using Spectre.Console;
using TorchSharp;
using Jetpack.Application.Runs;
using Jetpack.Application.Training;
using Jetpack.Cli.CommandLine;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;

namespace Jetpack.Cli.Runs;

/// <summary>
/// A training run in this process (`jetpack train`, the study's and the demo's baselines): the
/// TrainingLoop with a progress bar and metrics.jsonl, then final.safetensors and the convergence plot.
/// </summary>
public static class LocalTraining
{
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
