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
/// the step's exchange and all-reduce seconds and the evaluations), then gathers the final checkpoint
/// into final.safetensors (<see cref="FinalModel"/>, as the coordinator does for its jobs) and draws the plot.
/// </summary>
public static class TrainWorkers
{
    /// <param name="jobId">the job id the workers serve and label their metrics with (default: a fresh one)</param>
    public static int Run(RunSpec config, bool resume, long? until, int workers, string device, int threads, string? jobId = null,
                          Jetpack.Protocol.Channels.DataPlaneTransport dataPlane = Jetpack.Protocol.Channels.DataPlaneTransports.Default, Protocol.Security.ClusterTls? tls = null)
    {
        var spec = config.ResolveModel();
        CpuBf16.WarnIfEmulated(config.Recipe.Precision, Devices.Parse(device));
        string outDir = config.Out ?? RunSpec.DefaultOut;
        Directory.CreateDirectory(outDir);
        string checkpoint = Path.GetFullPath(Path.Combine(outDir, "checkpoint")), metricsPath = Path.Combine(outDir, MetricsLog.FileName);
        string? resumeFrom = resume && File.Exists(Path.Combine(checkpoint, TrainingCheckpoint.ManifestFile)) ? checkpoint : null;
        long startStep = resumeFrom is null ? 0 : TrainingCheckpoint.ReadManifest(resumeFrom).Step;

        var job = new WorkerJobSpec(config)
        {
            Model = config.ResolvedModelRequest(), Init = config.Init is null ? null : Path.GetFullPath(config.Init), Out = null,     // workers write only the shared checkpoint
            Parallel = config.Parallel, CheckpointDir = checkpoint, Device = device,
        };
        var layout = config.Layout(workers);                                  // a G that does not divide the workers fails here, naming the field
        long stop = Math.Min(until ?? config.Recipe.Steps, config.Recipe.Steps);
        AnsiConsole.MarkupLine($"model: {Markup.Escape(ModelRegistry.Summary(spec))}");
        AnsiConsole.MarkupLine($"placement: {Markup.Escape(Jetpack.Model.Distributed.ExpertPlacement.Describe(spec, layout))}");
        AnsiConsole.MarkupLine($"[bold]{spec.Variant}[/] on {workers} worker processes ({layout}): {config.Recipe.Steps} steps of {config.Recipe.GlobalBatch}" +
                               (resumeFrom is null ? "" : $", resuming at step {startStep} from {Markup.Escape(checkpoint)}"));

        ClusterOutcome outcome;
        string report;
        using (var metrics = MetricsLog.Open(metricsPath, startStep, workers: workers))
        {
            var launcher = WorkerLauncher.StartAsync(new LaunchOptions { WorldSize = workers, JobId = jobId ?? $"train-{Guid.NewGuid():N}", ThreadsPerWorker = threads, DataPlane = dataPlane, Tls = tls })
                                         .GetAwaiter().GetResult();
            try
            {
                AnsiConsole.MarkupLine($"workers ready: {string.Join(", ", launcher.Workers.Select(w => $"rank {w.Rank} pid {w.Pid} {w.Address} (metrics {w.MetricsAddress})"))}");
                outcome = default!;
                TrainProgressBar.Columns().Start(ctx =>
                {
                    var bar = new TrainProgressBar(ctx.AddTask($"{workers} workers", maxValue: stop), $"{workers} workers: ");
                    bar.OnStart(startStep, stop);
                    outcome = launcher.RunJobAsync(job, resumeFrom, until ?? 0, p =>
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
            AnsiConsole.MarkupLine($"[red]training failed[/]: {Markup.Escape(failure.ToString())}");
            Console.Error.WriteLine(report);
            return 1;
        }
        if (stop < config.Recipe.Steps)
        {
            AnsiConsole.MarkupLine($"stopped at step {stop} of {config.Recipe.Steps}: continue with --resume (any --workers)");
            return 0;
        }

        string final = Path.Combine(outDir, FinalModel.FileName);
        var last = MetricsLog.LastEvaluation(metricsPath);       // the workers' evaluation of the last step on the whole split
        var m = FinalModel.Write(checkpoint, final, jobId: null, expectedStep: config.Recipe.Steps, eval: last);
        var plot = ConvergencePlot.Write(metricsPath, Path.Combine(outDir, "convergence.png"), spec.Variant);
        AnsiConsole.MarkupLine(last is { } e && e.Step == m.Step
            ? $"final (step {m.Step}): top-1 [bold]{100 * e.Top1:F2}%[/], top-5 {100 * e.Top5:F2}%, eval loss {e.Loss:F4}"
            : $"final (step {m.Step}): [yellow]metrics.jsonl holds no evaluation of this step[/] (`jetpack eval` evaluates {Markup.Escape(final)})");
        AnsiConsole.MarkupLine($"written: {Markup.Escape(final)}, metrics.jsonl, {Markup.Escape(Path.GetFileName(plot))}, checkpoint/");
        return 0;
    }
}
