using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Jobs;
using Jetpack.Coordinator.Recycling;
using Jetpack.Coordinator.Telemetry;
using Jetpack.Coordinator.Training;
using Jetpack.Coordinator.Workers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Jetpack.Coordinator.Grains;

/// <summary>
/// A job's state machine (<see cref="JobTransitions"/>). It never blocks and never does tensor
/// maths: recycling (through <see cref="IRecycledCheckpointGrain"/> and <see cref="IRecyclingService"/>),
/// scatter and training (through <see cref="ITrainingDriver"/>) run on background tasks that report
/// back through the one-way <c>On*</c> methods, fenced by <see cref="JobState.Attempt"/>.
/// </summary>
public sealed class JobGrain(
    [PersistentState("job", StorageNames.Jobs)] IPersistentState<JobState> store,
    IRecyclingService recycling,
    ITrainingDriver driver,
    CoordinatorMetrics metrics,
    IOptions<CoordinatorOptions> options,
    IOptions<WorkerPoolOptions> poolOptions,
    TimeProvider clock,
    ILogger<JobGrain> log) : Grain, IJobGrain
{
    readonly List<(long After, TaskCompletionSource Signal)> waiters = [];
    CancellationTokenSource? running;
    IGrainTimer? retryAcquire;
    DateTimeOffset? waitingSince;
    DateTimeOffset persistedAt;
    JobSpec? spec;

    /// <summary>While background work runs the grain must stay active: its <see cref="running"/> token
    /// is how Cancel and recovery stop that work (idle collection would drop it).</summary>
    static readonly TimeSpan KeepActiveWhileRunning = TimeSpan.FromDays(7);
    /// <summary>How often a running job's step and loss are persisted between evaluations (a storage write each).</summary>
    static readonly TimeSpan PersistProgressEvery = TimeSpan.FromSeconds(10);

    JobState S => store.State;
    string JobId => this.GetPrimaryKeyString();
    IWorkerPoolGrain Pool => GrainFactory.GetGrain<IWorkerPoolGrain>(0);
    JobSpec Spec => spec ??= JobSpecReader.Parse(S.SpecText, S.Format, S.Source);

    public override Task OnActivateAsync(CancellationToken cancel)
    {
        if (S.Submitted) metrics.SetPhase(JobId, S.Phase);
        return Task.CompletedTask;
    }

    public async Task<SubmitOutcome> Submit(JobSubmission submission)
    {
        if (S.Submitted)
            return submission.Hash == S.SpecHash
                ? new SubmitOutcome(Snapshot(), SubmitRefusal.None, "")
                : new SubmitOutcome(null, SubmitRefusal.Conflict, $"job '{JobId}' already exists with a different spec (choose another name or job id)");
        JobSpec parsed;
        try
        {
            // The grain key is an input too (issue 12): it names the default output directory.
            if (!JobSpecValidator.IsJobId(JobId)) throw new JobSpecException(submission.Source, "job_id", JobSpecValidator.JobIdProblem(JobId));
            parsed = JobSpecReader.Parse(submission.SpecText, submission.Format, submission.Source);
            JobSpecValidator.Validate(parsed, submission.Source);
            JobOutputs.Resolve(parsed.Out, JobId, options.Value.DataDirectory, submission.Source);
        }
        catch (JobSpecException e)
        {
            return new SubmitOutcome(null, SubmitRefusal.InvalidSpec, e.Message);
        }
        spec = parsed;
        var now = clock.GetUtcNow();
        S.Submitted = true;
        (S.SpecText, S.Format, S.Source, S.SpecHash) = (submission.SpecText, submission.Format, submission.Source, submission.Hash);
        (S.Name, S.Model, S.TotalSteps, S.Phase, S.SubmittedAt) = (parsed.Name, parsed.Model, parsed.Recipe.Steps, JobPhase.Pending, now);
        metrics.SetPhase(JobId, JobPhase.Pending);
        Changed();
        await store.WriteStateAsync();
        await GrainFactory.GetGrain<IJobIndexGrain>(0).Add(JobId);
        await StartRecycling();
        return new SubmitOutcome(Snapshot(), SubmitRefusal.None, "");
    }

    public Task<JobSnapshot?> GetStatus() => Task.FromResult(S.Submitted ? Snapshot() : null);

    public async Task<JobSnapshot?> WaitForChange(long afterVersion, TimeSpan maxWait)
    {
        if (S.Submitted && S.Version <= afterVersion && !JobTransitions.IsTerminal(S.Phase))
        {
            var signal = new TaskCompletionSource();
            using var timeout = new CancellationTokenSource();
            waiters.Add((afterVersion, signal));
            await Task.WhenAny(signal.Task, Task.Delay(maxWait, clock, timeout.Token));
            timeout.Cancel();
            waiters.Remove((afterVersion, signal));
        }
        return S.Submitted ? Snapshot() : null;
    }

    public async Task<JobSnapshot?> Cancel(string reason)
    {
        if (!S.Submitted) return null;
        if (JobTransitions.IsTerminal(S.Phase)) return Snapshot();
        await End(JobPhase.Cancelled, reason);
        return Snapshot();
    }

    public async Task Resume()
    {
        // Only a fresh activation (nothing running here) of a live job: after a coordinator restart.
        if (!S.Submitted || JobTransitions.IsTerminal(S.Phase) || running is not null) return;
        log.LogInformation("job {Job}: resuming from {Phase}", JobId, S.Phase);
        switch (S.Phase)
        {
            case JobPhase.Pending or JobPhase.Recycling:
                await StartRecycling();
                break;
            case JobPhase.Scattering or JobPhase.Training:
                await Recover("the coordinator restarted");
                break;
            case JobPhase.Recovering:
                await Scatter(resume: true);
                break;
        }
    }

    // ---- Recycling ----

    async Task StartRecycling()
    {
        if (S.Phase != JobPhase.Recycling) await Move(JobPhase.Recycling);
        int attempt = await NextAttempt();
        var (jobId, model, recycle, self, factory, cancel) = (JobId, Spec.Model, Spec.Recycle, this.AsReference<IJobGrain>(), GrainFactory, running!.Token);
        _ = Task.Run(async () =>
        {
            try
            {
                string key = await recycling.ComputeKeyAsync(model, recycle, cancel);
                var ticket = await factory.GetGrain<IRecycledCheckpointGrain>(key).Request(new RecycleRequest(key, model, recycle), jobId, attempt);
                if (ticket.Checkpoint is not null) await self.OnCheckpointReady(attempt, ticket.Checkpoint, ticket.Reused);
            }
            catch (Exception e) when (!cancel.IsCancellationRequested)
            {
                await self.OnStageFailed(attempt, "recycling: " + e.Message);
            }
        }, CancellationToken.None);
    }

    public async Task OnCheckpointReady(int attempt, RecycledCheckpoint checkpoint, bool reused)
    {
        if (!Current(attempt, JobPhase.Recycling, nameof(OnCheckpointReady))) return;
        (S.CheckpointKey, S.CheckpointPath, S.CheckpointReused) = (checkpoint.Key, checkpoint.Path, reused);
        await Scatter(resume: false);
    }

    // ---- Scattering and Training (through the driver) ----

    async Task Scatter(bool resume)
    {
        // A recovery may continue on fewer workers: checkpoints are topology-free (DESIGN.md "Checkpoints").
        var acquired = await Pool.Acquire(JobId, Spec.Workers, minimum: resume ? 1 : Spec.Workers);
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
        if (S.Message.StartsWith("waiting for workers", StringComparison.Ordinal)) S.Message = "";
        S.Workers = [.. acquired.Workers];
        await Move(JobPhase.Scattering);
        int attempt = await NextAttempt();
        var (run, self, pool, cancel) = (Run(attempt, resume), this.AsReference<IJobGrain>(), Pool, running!.Token);
        _ = Task.Run(async () =>
        {
            try
            {
                await driver.ScatterAsync(run, cancel);
                await self.OnScattered(attempt);
            }
            catch (WorkerLostException e) when (!cancel.IsCancellationRequested)
            {
                // marked dead in the pool (not handed out again until it heartbeats), then recovery
                await pool.ReportLost(e.WorkerId, "scatter: " + e.Message);
                await self.OnWorkerLost(e.WorkerId, "scatter: " + e.Message);
            }
            catch (Exception e) when (!cancel.IsCancellationRequested)
            {
                await self.OnStageFailed(attempt, "scatter: " + e.Message);
            }
        }, CancellationToken.None);
    }

    Task RetryAcquire(bool resume)
    {
        retryAcquire?.Dispose();
        retryAcquire = null;
        bool stillWaiting = resume ? S.Phase == JobPhase.Recovering : S.Phase == JobPhase.Recycling && S.CheckpointPath.Length > 0;
        return stillWaiting ? Scatter(resume) : Task.CompletedTask;
    }

    public async Task OnScattered(int attempt)
    {
        if (!Current(attempt, JobPhase.Scattering, nameof(OnScattered))) return;
        await Move(JobPhase.Training);
        var (run, self, pool, cancel) = (Run(attempt, false), this.AsReference<IJobGrain>(), Pool, running!.Token);
        _ = Task.Run(async () =>
        {
            try
            {
                // Progress is one-way and in order per caller; the grain drops reports of old attempts.
                var progress = new Progress(p => self.OnProgress(attempt, p));
                await driver.TrainAsync(run, progress, cancel);
                string finalModel;
                try { finalModel = await driver.FinishAsync(run, progress.LastEval, cancel); }     // before Completed: a job ends with its model
                catch (Exception e) when (!cancel.IsCancellationRequested)
                {
                    await self.OnStageFailed(attempt, e.Message);
                    return;
                }
                await self.OnTrainingCompleted(attempt, finalModel);
            }
            catch (WorkerLostException e) when (!cancel.IsCancellationRequested)
            {
                await pool.ReportLost(e.WorkerId, "training: " + e.Message);
                await self.OnWorkerLost(e.WorkerId, "training: " + e.Message);
            }
            catch (Exception e) when (!cancel.IsCancellationRequested)
            {
                await self.OnStageFailed(attempt, "training: " + e.Message);
            }
        }, CancellationToken.None);
    }

    public async Task OnProgress(int attempt, TrainingProgress progress)
    {
        if (!Current(attempt, JobPhase.Training, nameof(OnProgress))) return;
        (S.Step, S.TotalSteps, S.Loss, S.ImagesPerSecond) = (progress.Step, progress.TotalSteps, progress.Loss, progress.ImagesPerSecond);
        if (progress.Eval is not null) S.LastEval = progress.Eval;
        Changed();
        // Not every step (the training checkpoint, not the grain, is the resume point), but every
        // evaluation and every PersistProgressEvery: what status shows survives a coordinator restart.
        if (progress.Eval is not null || clock.GetUtcNow() - persistedAt >= PersistProgressEvery) await Persist();
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

    async Task Recover(string why)
    {
        log.LogWarning("job {Job}: recovering: {Why}", JobId, why);
        running?.Cancel();
        running = null;
        await Pool.Release(JobId);
        S.Workers = [];
        S.Recoveries++;
        S.Message = why;
        metrics.RecordRecovery(JobId);
        await Move(JobPhase.Recovering);
        await Scatter(resume: true);
    }

    // ---- State machine plumbing ----

    async Task End(JobPhase phase, string message)
    {
        running?.Cancel();
        running = null;
        retryAcquire?.Dispose();
        retryAcquire = null;
        waitingSince = null;
        await Pool.Release(JobId);
        S.Workers = [];
        if (message.Length > 0) S.Message = message; // a completed job keeps its last recovery's reason
        await Move(phase);
    }

    /// <summary>The one way the phase changes: refuses edges the table does not have, persists.</summary>
    async Task Move(JobPhase to)
    {
        JobTransitions.Check(JobId, S.Phase, to);
        log.LogInformation("job {Job}: {From} → {To}", JobId, S.Phase, to);
        S.Phase = to;
        metrics.SetPhase(JobId, to);
        Changed();
        await Persist();
    }

    async Task Persist()
    {
        await store.WriteStateAsync();
        persistedAt = clock.GetUtcNow();
    }

    async Task<int> NextAttempt()
    {
        running?.Cancel();
        running = new CancellationTokenSource();
        DelayDeactivation(KeepActiveWhileRunning);
        S.Attempt++;
        await store.WriteStateAsync();
        return S.Attempt;
    }

    bool Current(int attempt, JobPhase expected, string report)
    {
        if (attempt == S.Attempt && S.Phase == expected) return true;
        log.LogDebug("job {Job}: ignored {Report} of attempt {Attempt} (now attempt {Current}, {Phase})", JobId, report, attempt, S.Attempt, S.Phase);
        return false;
    }

    void Changed()
    {
        S.Version++;
        S.UpdatedAt = clock.GetUtcNow();
        foreach (var (after, signal) in waiters.ToList())
            if (S.Version > after) signal.TrySetResult();
    }

    TrainingRun Run(int attempt, bool resume) => new(JobId, attempt, Spec, S.CheckpointPath, OutDirectory, S.Workers, resume);

    string OutDirectory => JobOutputs.Resolve(Spec.Out, JobId, options.Value.DataDirectory, S.Source);

    JobSnapshot Snapshot() => new()
    {
        JobId = JobId, Name = S.Name, Model = S.Model, Phase = S.Phase, Message = S.Message,
        Step = S.Step, TotalSteps = S.TotalSteps, Loss = S.Loss, ImagesPerSecond = S.ImagesPerSecond,
        Workers = S.Workers.Select(w => w.WorkerId).ToArray(), Recoveries = S.Recoveries,
        CheckpointKey = S.CheckpointKey, CheckpointPath = S.CheckpointPath, CheckpointReused = S.CheckpointReused,
        SubmittedAt = S.SubmittedAt, UpdatedAt = S.UpdatedAt, Version = S.Version,
        LastEval = S.LastEval, OutDirectory = OutDirectory, FinalModelPath = S.FinalModelPath,
    };

    /// <summary>IProgress without a synchronization context: reports go straight to the grain reference.</summary>
    sealed class Progress(Func<TrainingProgress, Task> report) : IProgress<TrainingProgress>
    {
        volatile Evaluation? lastEval;

        /// <summary>The last evaluation reported (the final model's metadata): read after training returned.</summary>
        public Evaluation? LastEval => lastEval;

        public void Report(TrainingProgress value)
        {
            if (value.Eval is not null) lastEval = value.Eval;
            _ = report(value);
        }
    }
}
