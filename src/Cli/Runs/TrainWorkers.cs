using Spectre.Console;
using Jetpack.Application.Runs;
using Jetpack.Application.Training;
using Jetpack.WorkerCluster;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Registry;
using Jetpack.Model.Torch;
using Jetpack.Model.Training;
using Jetpack.Protocol.Channels;

namespace Jetpack.Cli.Runs;

/// <summary>
/// <c>jetpack train --config F --workers N</c>: the same run with expert parallelism in N
/// jetpack-worker processes on loopback (DESIGN.md, "One training step"), started by the launcher
/// the tests use. Every rank runs the one <see cref="TrainingLoop"/>: the workers write the
/// topology-free checkpoint (so --resume works with any N, or without --workers) and evaluate every
/// eval_every steps (distributed); this process writes metrics.jsonl from rank 0's progress (with
/// the step's exchange and all-reduce seconds and the evaluations), then loads the final checkpoint
/// into one full model to write final.safetensors and the plot.
/// </summary>
public static class TrainWorkers
{
    /// <param name="jobId">the job id the workers serve and label their metrics with (default: a fresh one)</param>
    public static int Run(RunSpec config, bool resume, long? until, int workers, string device, int threads, string? jobId = null,
                          Jetpack.Protocol.Channels.DataPlaneTransport dataPlane = Jetpack.Protocol.Channels.DataPlaneTransport.Grpc)
    {
        var spec = config.ResolveModel();
        CpuBf16.WarnIfEmulated(config.Recipe.Precision, Devices.Parse(device));
        string outDir = config.Out ?? RunSpec.DefaultOut;
        Directory.CreateDirectory(outDir);
        string checkpoint = Path.GetFullPath(Path.Combine(outDir, "checkpoint")), metricsPath = Path.Combine(outDir, MetricsLog.FileName);
        string? resumeFrom = resume && File.Exists(Path.Combine(checkpoint, TrainingCheckpoint.ManifestFile)) ? checkpoint : null;
        long startStep = resumeFrom is null ? 0 : TrainingCheckpoint.ReadManifest(resumeFrom).Step;

        var job = new WorkerJobSpec
        {
            Model = config.Model, Init = config.Init is null ? null : Path.GetFullPath(config.Init), Data = config.Data, Recipe = config.Recipe,
            EvalEvery = config.EvalEvery, CheckpointEvery = config.CheckpointEvery, Deterministic = config.Deterministic,
            CheckpointDir = checkpoint, Device = device,
        };
        long stop = Math.Min(until ?? config.Recipe.Steps, config.Recipe.Steps);
        AnsiConsole.MarkupLine($"[bold]{spec.Variant}[/] on {workers} worker processes: {config.Recipe.Steps} steps of {config.Recipe.GlobalBatch}" +
                               (resumeFrom is null ? "" : $", resuming at step {startStep} from {Markup.Escape(checkpoint)}"));

        ClusterJobOutcome outcome;
        string report;
        using (var metrics = MetricsLog.Open(metricsPath, startStep, workers: workers))
        {
            var launcher = WorkerLauncher.StartAsync(new LaunchOptions { WorldSize = workers, JobId = jobId ?? $"train-{Guid.NewGuid():N}", ThreadsPerWorker = threads, DataPlane = dataPlane })
                                         .GetAwaiter().GetResult();
            try
            {
                AnsiConsole.MarkupLine($"workers ready: {string.Join(", ", launcher.Workers.Select(w => $"rank {w.Rank} pid {w.Pid} {w.Address} (metrics {w.MetricsAddress})"))}");
                outcome = default!;
                TrainProgressBar.Columns().Start(ctx =>
                {
                    var bar = new TrainProgressBar(ctx.AddTask($"{workers} workers", maxValue: stop), $"{workers} workers: ");
                    bar.OnStart(startStep, stop);
                    outcome = ClusterJob.RunAsync(launcher, job, resumeFrom, until ?? 0, p =>
                    {
                        var step = p.ToStepReport(config.Recipe.GlobalBatch);
                        metrics.Write(step);
                        bar.OnStep(step);
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
    /// checkpoint into one process, saved as final.safetensors, and the convergence plot. The final
    /// evaluation on the whole split is the workers' (on metrics.jsonl's last line); if that line has
    /// none (an older run), it is made here and added to it.
    /// </summary>
    public static void Finish(RunSpec config, string checkpoint, string metricsPath, string device)
    {
        var spec = config.ResolveModel();
        var (train, eval) = RunDatasets.Open(config.Data, spec);
        using var model = ModelRegistry.Create(spec, Devices.Parse(device));
        using var trainer = new Trainer(spec, model, train, config.Recipe, Devices.Parse(device));
        trainer.Restore(checkpoint);
        var last = MetricsLog.LastEvaluation(metricsPath) is { } logged && logged.Step == trainer.Step && logged.Eval.Images == eval.Count ? logged.Eval : null;
        if (last is null)
        {
            last = trainer.Evaluate(eval, limit: null);                  // the whole split, as the single-process run's final evaluation
            MetricsLog.SetLastEvaluation(metricsPath, last);
        }
        string outDir = config.Out ?? RunSpec.DefaultOut;
        ModelCheckpoint.Save(Path.Combine(outDir, "final.safetensors"), spec, model);
        var plot = ConvergencePlot.Write(metricsPath, Path.Combine(outDir, "convergence.png"), spec.Variant);
        AnsiConsole.MarkupLine($"final (step {trainer.Step}): top-1 [bold]{100 * last.Top1:F2}%[/], top-5 {100 * last.Top5:F2}%, eval loss {last.Loss:F4}");
        AnsiConsole.MarkupLine($"written: {Markup.Escape(outDir)}/final.safetensors, metrics.jsonl, {Markup.Escape(Path.GetFileName(plot))}, checkpoint/");
    }
}
