using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Training;

namespace Jetpack.Coordinator.Tests.Support;

/// <summary>
/// A training driver for unit tests only: scatter returns at once; training reports
/// <see cref="Steps"/> steps of a falling loss, then, if <see cref="HoldAttempts"/> contains the
/// attempt, waits until cancelled (a job "still training", e.g. when a worker dies).
/// </summary>
public sealed class FakeTrainingDriver : ITrainingDriver
{
    public int Steps { get; set; } = 5;
    public HashSet<int> HoldAttempts { get; } = [];
    public List<TrainingRun> Scatters { get; } = [];

    public Task ScatterAsync(TrainingRun run, CancellationToken cancel)
    {
        lock (Scatters) Scatters.Add(run);
        return Task.CompletedTask;
    }

    public async Task TrainAsync(TrainingRun run, IProgress<TrainingProgress> progress, CancellationToken cancel)
    {
        for (int step = 1; step <= Steps; step++)
            progress.Report(new TrainingProgress(step, Steps, 2.0 / step, 100 * run.Workers.Count));
        bool hold;
        lock (HoldAttempts) hold = HoldAttempts.Contains(run.Attempt);
        if (hold) await Task.Delay(Timeout.Infinite, cancel);
    }
}
