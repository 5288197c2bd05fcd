using Jetpack.Model.Training;
using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Training;
using Jetpack.WorkerCluster;

namespace Jetpack.Coordinator.Tests.Support;

/// <summary>
/// A training driver for unit tests only: scatter returns at once; training reports
/// <see cref="Steps"/> steps of a falling loss (with an evaluation every <see cref="EvalEvery"/>
/// steps, top-1 = step / 10), then, if <see cref="HoldAttempts"/> contains the attempt, waits
/// until cancelled (a job "still training", e.g. when a worker dies) or until a stop is asked for
/// (<see cref="StopAfterAsync"/>: it then ends stopped after the step asked, as every rank would). Finish names
/// <c>OutDirectory/final.safetensors</c> without writing it, or throws <see cref="FinishError"/>.
/// </summary>
public sealed class FakeTrainingDriver : ITrainingDriver
{
    public int Steps { get; set; } = 5;
    public int EvalEvery { get; set; }
    public string? FinishError { get; set; }
    /// <summary>When set, training reports nothing until it completes (a watcher sees the Training phase first).</summary>
    public TaskCompletionSource? TrainGate { get; set; }
    public HashSet<int> HoldAttempts { get; } = [];
    /// <summary>Jobs whose every training attempt holds.</summary>
    public HashSet<string> HoldJobs { get; } = [];
    public List<TrainingRun> Scatters { get; } = [];
    /// <summary>When set, every training attempt ends with this exception (after its steps): a fault that repeats.</summary>
    public Func<TrainingRun, Exception>? FailEveryAttempt { get; set; }
    public List<EvalResult?> Finished { get; } = [];
    /// <summary>How many stops to refuse, as a rank already past the step does (each refusal counts one down).</summary>
    public int RefuseStops { get; set; }
    /// <summary>Every stop accepted: the attempt and the step.</summary>
    public List<(int Attempt, long Step)> Stops { get; } = [];
    /// <summary>Stops of held attempts, by job and attempt: a held attempt ends when its stop is asked for.</summary>
    readonly System.Collections.Concurrent.ConcurrentDictionary<(string Job, int Attempt), TaskCompletionSource<long>> stops = new();

    public Task<ScatterPlan> ScatterAsync(TrainingRun run, CancellationToken cancel)
    {
        lock (Scatters) Scatters.Add(run);
        return Task.FromResult(new ScatterPlan($"{run.JobId}#{run.Attempt}", new int[run.Workers.Count], 1, "{}", null));
    }

    public async Task<long?> TrainAsync(TrainingRun run, ScatterPlan plan, IProgress<TrainingProgress> progress, CancellationToken cancel)
    {
        if (TrainGate is { } gate) await gate.Task.WaitAsync(cancel);
        for (int step = 1; step <= Steps; step++)
            progress.Report(new TrainingProgress(step, Steps, 2.0 / step, 100 * run.Workers.Count,
                EvalEvery > 0 && step % EvalEvery == 0 ? new EvalResult(1.0 / step, step / 10.0, 1.0, 50) { Step = step } : null));
        if (FailEveryAttempt is { } fail) throw fail(run);
        bool hold;
        lock (HoldAttempts) hold = HoldAttempts.Contains(run.Attempt) || HoldJobs.Contains(run.JobId);
        if (!hold) return null;
        return await StopOf(run).Task.WaitAsync(cancel);
    }

    TaskCompletionSource<long> StopOf(TrainingRun run) => stops.GetOrAdd((run.JobId, run.Attempt), _ => new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously));

    public Task StopAfterAsync(TrainingRun run, long step, string reason, CancellationToken cancel)
    {
        lock (Stops)
        {
            if (RefuseStops > 0)
            {
                RefuseStops--;
                throw new InvalidOperationException($"run {run.JobId}#{run.Attempt}: stop after step {step} refused: rank 1 is past step {step} already");
            }
            Stops.Add((run.Attempt, step));
        }
        StopOf(run).TrySetResult(step);
        return Task.CompletedTask;
    }

    public Task<string> FinishAsync(TrainingRun run, EvalResult? lastEval, CancellationToken cancel)
    {
        lock (Finished) Finished.Add(lastEval);
        if (FinishError is not null) throw new InvalidOperationException(FinishError);
        return Task.FromResult(Path.Combine(run.OutDirectory, FinalModel.FileName));
    }
}
