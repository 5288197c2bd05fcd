using System.Text.Json;
using Spectre.Console;
using TorchSharp;
using Jetpack.GpuWorker.Jobs;
using Jetpack.GpuWorker.Launch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Registry;
using Jetpack.Model.Torch;
using Jetpack.Model.Training;

namespace Jetpack.Coordinator.Cli;

/// <summary>
/// <c>jetpack train --config F --workers N</c>: the same run with expert parallelism in N
/// jetpack-worker processes on loopback (DESIGN.md, "One training step"), started by the launcher
/// the tests use. Workers write the topology-free checkpoint (so --resume works with any N, or
/// without --workers); this process writes metrics.jsonl from rank 0's progress (with the step's
/// exchange and all-reduce seconds), then loads the final checkpoint into one full model to
/// evaluate it and write final.safetensors and the plot. Evaluation runs only at the end here
/// (eval_every applies to single-process runs).
/// </summary>
public static class TrainWorkers
{
    /// <param name="jobId">the job id the workers serve and label their metrics with (default: a fresh one)</param>
    public static int Run(TrainConfig config, bool resume, long? until, int workers, string device, int threads, string? jobId = null,
                          GpuWorker.DataPlane.DataPlaneTransport dataPlane = GpuWorker.DataPlane.DataPlaneTransport.Grpc)
    {
        var spec = ModelRegistry.Get(config.Model);
        CpuBf16.WarnIfEmulated(config.Recipe.Precision, Devices.Parse(device));
        Directory.CreateDirectory(config.Out);
        string checkpoint = Path.GetFullPath(Path.Combine(config.Out, "checkpoint")), metricsPath = Path.Combine(config.Out, "metrics.jsonl");
        string? resumeFrom = resume && File.Exists(Path.Combine(checkpoint, TrainingCheckpoint.ManifestFile)) ? checkpoint : null;
        long startStep = resumeFrom is null ? 0 : TrainingCheckpoint.ReadManifest(resumeFrom).Step;
        var metrics = new List<string>();
        if (resumeFrom is not null && File.Exists(metricsPath))
            metrics.AddRange(File.ReadAllLines(metricsPath).Where(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64() <= startStep));
        File.WriteAllLines(metricsPath, metrics);

        var job = new WorkerJobSpec
        {
            Model = config.Model, Init = config.Init is null ? null : Path.GetFullPath(config.Init), Data = TrainCommand.ToJobData(config.Data),
            Recipe = config.Recipe, CheckpointDir = checkpoint, CheckpointEvery = config.CheckpointEvery, Device = device,
        };
        long stop = Math.Min(until ?? config.Recipe.Steps, config.Recipe.Steps);
        AnsiConsole.MarkupLine($"[bold]{spec.Variant}[/] on {workers} worker processes: {config.Recipe.Steps} steps of {config.Recipe.GlobalBatch}" +
                               (resumeFrom is null ? "" : $", resuming at step {startStep} from {Markup.Escape(checkpoint)}"));

        ClusterJobOutcome outcome;
        string report;
        using (var log = File.AppendText(metricsPath))
        {
            var launcher = WorkerLauncher.StartAsync(new LaunchOptions { WorldSize = workers, JobId = jobId ?? $"train-{Guid.NewGuid():N}", ThreadsPerWorker = threads, DataPlane = dataPlane })
                                         .GetAwaiter().GetResult();
            try
            {
                AnsiConsole.MarkupLine($"workers ready: {string.Join(", ", launcher.Workers.Select(w => $"rank {w.Rank} pid {w.Pid} {w.Address} (metrics {w.MetricsAddress})"))}");
                outcome = default!;
                AnsiConsole.Progress().Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask($"{workers} workers", maxValue: stop);
                        task.Value = startStep;
                        outcome = ClusterJob.RunAsync(launcher, job, resumeFrom, until ?? 0, p =>
                        {
                            log.WriteLine(JsonSerializer.Serialize(new
                            {
                                step = p.Step, loss = p.Loss, lr = p.LearningRate, grad_norm = p.GradNorm,
                                images_per_s = config.Recipe.GlobalBatch / p.StepSeconds, step_s = p.StepSeconds,
                                exchange_s = p.ExchangeSeconds, all_reduce_s = p.AllReduceSeconds, workers,
                            }));
                            log.Flush();
                            task.Description = $"{workers} workers: step {p.Step} loss {p.Loss:F3} {p.StepSeconds:F2} s/step " +
                                               $"(exchange {p.ExchangeSeconds:F2} s, all-reduce {p.AllReduceSeconds:F2} s)";
                            task.Value = p.Step;
                        }).GetAwaiter().GetResult();
                    });
                report = launcher.Report();
            }
            finally
            {
                launcher.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }
        if (outcome.Failure is { } failure)
        {
            AnsiConsole.MarkupLine($"[red]training failed[/]: {Markup.Escape(failure)}");
            Console.Error.WriteLine(report);
            return 1;
        }
        if (stop < config.Recipe.Steps)
        {
            AnsiConsole.MarkupLine($"stopped at step {stop} of {config.Recipe.Steps}: continue with --resume (any --workers)");
            return 0;
        }

        Finish(config, checkpoint, metricsPath, device);
        return 0;
    }

    /// <summary>
    /// The final model of an expert-parallel run: every rank's experts gathered from the topology-free
    /// checkpoint into one process, evaluated on the whole split (added to the last line of
    /// metrics.jsonl), saved as final.safetensors, and the convergence plot.
    /// </summary>
    public static void Finish(TrainConfig config, string checkpoint, string metricsPath, string device)
    {
        var spec = ModelRegistry.Get(config.Model);
        var (train, eval) = TrainCommand.OpenData(config.Data);
        using var model = ModelRegistry.Create(spec, Devices.Parse(device));
        using var trainer = new Trainer(spec, model, train, config.Recipe, Devices.Parse(device));
        trainer.Restore(checkpoint);
        var last = trainer.Evaluate(eval, limit: null);                  // the whole split, as the single-process run's final evaluation
        AddFinalEvaluation(metricsPath, last);
        ModelCheckpoint.Save(Path.Combine(config.Out, "final.safetensors"), spec, model);
        var plot = ConvergencePlot.Write(metricsPath, Path.Combine(config.Out, "convergence.png"), spec.Variant);
        AnsiConsole.MarkupLine($"final (step {trainer.Step}): top-1 [bold]{100 * last.Top1:F2}%[/], top-5 {100 * last.Top5:F2}%, eval loss {last.Loss:F4}");
        AnsiConsole.MarkupLine($"written: {Markup.Escape(config.Out)}/final.safetensors, metrics.jsonl, {Markup.Escape(Path.GetFileName(plot))}, checkpoint/");
    }

    /// <summary>Adds the final evaluation to the last line of metrics.jsonl (as a single-process run's last line has it).</summary>
    static void AddFinalEvaluation(string metricsPath, EvalResult eval)
    {
        var lines = File.ReadAllLines(metricsPath);
        if (lines.Length == 0) return;
        var last = System.Text.Json.Nodes.JsonNode.Parse(lines[^1])!.AsObject();
        last["eval_loss"] = eval.Loss;
        last["top1"] = eval.Top1;
        last["top5"] = eval.Top5;
        lines[^1] = last.ToJsonString();
        File.WriteAllLines(metricsPath, lines);
    }
}
