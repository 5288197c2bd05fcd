using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Jobs;
using Jetpack.Coordinator.Training;
using Microsoft.Extensions.Logging;

namespace Jetpack.Coordinator.Grains;

/// <summary>The stages of a job — recycling, scatter, training, recovery — each on a background task (<see cref="RunStage"/>).</summary>
public sealed partial class JobGrain
{
    // ---- Recycling ----

    async Task StartRecycling()
    {
        if (S.Phase != JobPhase.Recycling) await Move(JobPhase.Recycling);
        int attempt = await NextAttempt();
        var (jobId, model, recycle, factory) = (JobId, Spec.ResolvedModelRequest().ToString(), Spec.Recycle, GrainFactory);
        RunStage(attempt, "recycling", async (self, cancel) =>
        {
            string key = await recycling.ComputeKeyAsync(model, recycle, cancel);
            var ticket = await factory.GetGrain<IRecycledCheckpointGrain>(key).Request(new RecycleRequest(key, model, recycle), jobId, attempt);
            if (ticket.Checkpoint is not null) await self.OnCheckpointReady(attempt, ticket.Checkpoint, ticket.Reused);
        });
    }

    public async Task OnCheckpointReady(int attempt, RecycledCheckpoint checkpoint, bool reused)
    {
        if (!Current(attempt, JobPhase.Recycling, nameof(OnCheckpointReady))) return;
        (S.CheckpointKey, S.CheckpointPath, S.CheckpointReused) = (checkpoint.Key, checkpoint.Path, reused);
        cause = "start";
        await Scatter(resume: false);
    }

    // ---- Scattering and Training (through the driver) ----

    async Task Scatter(bool resume)
    {
        // The first scatter needs `workers` and takes up to elastic.max_workers; a recovery may continue on
        // fewer, down to elastic.min_workers: checkpoints are topology-free (DESIGN.md "Checkpoints").
        var acquired = await Pool.Acquire(JobId, Spec.MaxWorkers, minimum: resume ? Spec.MinWorkers : Spec.Workers, partitioned);
        if (acquired.Error is not null)
        {
            // Wait (a one-shot timer per second, never blocking) up to the acquire timeout: workers
            // may be starting, or re-announcing themselves after a coordinator restart.
            var now = clock.GetUtcNow();
            waitingSince ??= now;
            if (now - waitingSince.Value >= poolOptions.Value.AcquireTimeout)
            {
                waitingSince = null;
                await End(JobPhase.Failed, $"{(resume ? "recovery: " : "")}{acquired.Error} after waiting {poolOptions.Value.AcquireTimeout.TotalSeconds:F0} s");
                return;
            }
            if (S.Message != "waiting for workers: " + acquired.Error) { S.Message = "waiting for workers: " + acquired.Error; Changed(); await Persist(); }
            retryAcquire?.Dispose();
            retryAcquire = this.RegisterGrainTimer(() => RetryAcquire(resume), new GrainTimerCreationOptions(TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan) { KeepAlive = true });
            return;
        }
        waitingSince = null;
        partitioned = [];
        if (S.Message.StartsWith("waiting for workers", StringComparison.Ordinal)) S.Message = "";
        await StartScatter(acquired.Workers, resume);
    }

    /// <summary>Scatters onto <paramref name="workers"/> (acquired) in a new attempt: the first scatter, a recovery's or a growth's.</summary>
    async Task StartScatter(IReadOnlyList<WorkerAssignment> workers, bool resume)
    {
        S.Workers = [.. workers];
        await Move(JobPhase.Scattering);
        int attempt = await NextAttempt();
        var run = Run(attempt, resume);
        RunStage(attempt, "scatter", async (self, cancel) =>
        {
            var plan = await driver.ScatterAsync(run, cancel);
            await self.OnScattered(attempt, plan);
        });
    }

    Task RetryAcquire(bool resume)
    {
        retryAcquire?.Dispose();
        retryAcquire = null;
        bool stillWaiting = resume ? S.Phase == JobPhase.Recovering : S.Phase == JobPhase.Recycling && S.CheckpointPath.Length > 0;
        return stillWaiting ? Scatter(resume) : Task.CompletedTask;
    }

    public async Task OnScattered(int attempt, ScatterPlan plan)
    {
        if (!Current(attempt, JobPhase.Scattering, nameof(OnScattered))) return;
        await Move(JobPhase.Training);
        StartGrowthChecks();
        var run = Run(attempt, false);
        RunStage(attempt, "training", async (self, cancel) =>
        {
            // Progress is one-way and in order per caller; the grain drops reports of old attempts.
            var progress = new Progress(p => self.OnProgress(attempt, p));
            if (await driver.TrainAsync(run, plan, progress, cancel) is { } stoppedAfter)
            {
                await self.OnTrainingStopped(attempt, stoppedAfter);                          // asked for by a growth (JobGrain.Growth.cs)
                return;
            }
            string finalModel;
            try { finalModel = await driver.FinishAsync(run, progress.LastEval, cancel); }     // before Completed: a job ends with its model
            catch (Exception e) when (!cancel.IsCancellationRequested)
            {
                await self.OnStageFailed(attempt, e.Message);                                 // its own message: FinalModel names the stage
                return;
            }
            await self.OnTrainingCompleted(attempt, finalModel);
        });
    }

    /// <summary>
    /// Runs one stage of <paramref name="attempt"/> on a background task (the grain never blocks;
    /// <paramref name="work"/> must capture values, not grain state). Its outcome comes back through
    /// the one-way reports: a <see cref="WorkerLostException"/> marks the worker dead in the pool (not
    /// handed out again until it registers again) and starts a recovery; any other failure fails the
    /// attempt as "&lt;stage&gt;: message". Nothing is reported once the attempt was cancelled.
    /// </summary>
    void RunStage(int attempt, string stage, Func<IJobGrain, CancellationToken, Task> work)
    {
        var (self, pool, cancel) = (this.AsReference<IJobGrain>(), Pool, running!.Token);
        _ = Task.Run(async () =>
        {
            try
            {
                await work(self, cancel);
            }
            catch (WorkerLostException e) when (!cancel.IsCancellationRequested)
            {
                await pool.ReportLost(e.WorkerId, $"{stage}: {e.Message}");
                await self.OnWorkerLost(e.WorkerId, $"{stage}: {e.Message}");
            }
            catch (PartitionException e) when (!cancel.IsCancellationRequested)
            {
                await self.OnPartitioned(attempt, [.. e.Dropped], $"{stage}: {e.Message}");
            }
            catch (Exception e) when (!cancel.IsCancellationRequested)
            {
                await self.OnStageFailed(attempt, $"{stage}: {e.Message}");
            }
        }, CancellationToken.None);
    }

    public async Task OnProgress(int attempt, TrainingProgress progress)
    {
        if (!Current(attempt, JobPhase.Training, nameof(OnProgress))) return;
        progressed = attempt;
        (S.Step, S.TotalSteps, S.Loss, S.ImagesPerSecond) = (progress.Step, progress.TotalSteps, progress.Loss, progress.ImagesPerSecond);
        if (progress.Eval is not null) S.LastEval = progress.Eval;
        Changed();
        // Not every step (the training checkpoint, not the grain, is the resume point), but every
        // evaluation and every PersistProgressEvery: what status shows survives a coordinator restart.
        // Not while a write is pending (the store is away): its retry writes this progress too, and
        // each failed write would hold the grain for the store's timeout.
        if (unsaved is null && (progress.Eval is not null || clock.GetUtcNow() - persistedAt >= PersistProgressEvery)) await Persist();
    }

    public async Task OnTrainingCompleted(int attempt, string finalModelPath)
    {
        if (!Current(attempt, JobPhase.Training, nameof(OnTrainingCompleted))) return;
        S.FinalModelPath = finalModelPath;
        await End(JobPhase.Completed, "");
    }

    public async Task OnStageFailed(int attempt, string message)
    {
        if (attempt != S.Attempt || JobTransitions.IsTerminal(S.Phase)) return;
        await End(JobPhase.Failed, message);
    }

    // ---- Recovery ----

    public async Task OnWorkerLost(string workerId, string reason)
    {
        if (S.Phase is not (JobPhase.Scattering or JobPhase.Training) || S.Workers.All(w => w.WorkerId != workerId)) return;
        await Recover(reason);
    }

    public async Task OnPartitioned(int attempt, string[] dropped, string reason)
    {
        if (attempt != S.Attempt || S.Phase is not (JobPhase.Scattering or JobPhase.Training)) return;
        partitioned = dropped;
        partitionedEver.UnionWith(dropped);
        await Recover(reason);
    }

    async Task Recover(string why)
    {
        if (S.Recoveries >= Spec.MaxRecoveries)
        {
            // bounded (issue 20 fault 8): the fault that came once too often, and the one before it
            string earlier = S.Recoveries > 0 && S.Message.Length > 0 ? $"; the recovery before: {S.Message}" : "";
            log.LogWarning("job {Job}: recoveries exhausted ({Count} of max_recoveries {Max}): {Why}", JobId, S.Recoveries, Spec.MaxRecoveries, why);
            await End(JobPhase.Failed, $"recoveries exhausted: fault {S.Recoveries + 1} after {S.Recoveries} recoveries (max_recoveries {Spec.MaxRecoveries}): {why}{earlier}");
            return;
        }
        log.LogWarning("job {Job}: recovering: {Why}", JobId, why);
        running?.Cancel();
        running = null;
        StopGrowthChecks();
        cause = "recovery: " + why;
        await Pool.Release(JobId);
        S.Workers = [];
        S.Recoveries++;
        S.Message = why;
        metrics.RecordRecovery(JobId);
        await Move(JobPhase.Recovering);
        var backoff = Spec.RecoveryBackoff(S.Recoveries);
        if (backoff <= TimeSpan.Zero) { await Scatter(resume: true); return; }
        // a one-shot timer, never a blocking wait; a cancel meanwhile leaves Recovering and the timer finds nothing to do
        retryAcquire?.Dispose();
        retryAcquire = this.RegisterGrainTimer(() => RetryAcquire(resume: true), new GrainTimerCreationOptions(backoff, Timeout.InfiniteTimeSpan) { KeepAlive = true });
    }
}
