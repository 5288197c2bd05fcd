using Jetpack.Model.Training;
using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Jobs;
using Jetpack.Coordinator.Recycling;
using Jetpack.Coordinator.Telemetry;
using Jetpack.Coordinator.Training;
using Jetpack.Coordinator.Workers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Jetpack.Application.Runs;

namespace Jetpack.Coordinator.Grains;

/// <summary>
/// A job's state machine (<see cref="JobTransitions"/>). It never blocks and never does tensor
/// maths: recycling (through <see cref="IRecycledCheckpointGrain"/> and <see cref="IRecyclingService"/>),
/// scatter and training (through <see cref="ITrainingDriver"/>) run on background tasks that report
/// back through the one-way <c>On*</c> methods, fenced by <see cref="JobState.Attempt"/>.
/// This file: the grain's calls and the state machine's plumbing; JobGrain.Stages.cs: the stages;
/// JobGrain.Growth.cs: elastic growth at a checkpoint boundary.
/// </summary>
public sealed partial class JobGrain(
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
    /// <summary>Since when the state in memory is newer than the store's (a write failed), or null.</summary>
    DateTimeOffset? unsaved;
    IGrainTimer? repersist;
    TimeSpan repersistAfter;
    static readonly TimeSpan RepersistAtMost = TimeSpan.FromSeconds(10);
    /// <summary>Workers a partition dropped from this job: left out of the recovery's acquisition
    /// (they still heartbeat, so the pool alone would hand them straight back).</summary>
    string[] partitioned = [];
    /// <summary>Every worker a partition dropped from this job: a growth never takes them back (nothing tells the
    /// coordinator that a partition healed; a recovery may, as before).</summary>
    readonly HashSet<string> partitionedEver = new(StringComparer.Ordinal);
    /// <summary>Why the next attempt runs, for attempts.jsonl (<see cref="TrainingRun.Cause"/>).</summary>
    string cause = "start";
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
            if (!JobSpecValidator.IsJobId(JobId)) throw new RunSpecException(submission.Source, "job_id", JobSpecValidator.JobIdProblem(JobId));
            parsed = JobSpecReader.Parse(submission.SpecJson, "json", submission.Source);     // validated by the edge (JobService)
            JobOutputs.Resolve(parsed.Out, JobId, options.Value.DataDirectory, submission.Source);
        }
        catch (RunSpecException e)
        {
            return new SubmitOutcome(null, SubmitRefusal.InvalidSpec, e.Message);
        }
        spec = parsed;
        var now = clock.GetUtcNow();
        S.Submitted = true;
        (S.SpecText, S.Format, S.Source, S.SpecHash) = (submission.SpecJson, "json", submission.Source, submission.Hash);
        (S.Name, S.Model, S.TotalSteps, S.Phase, S.SubmittedAt) = (parsed.Name, parsed.Model.ToString(), parsed.Recipe.Steps, JobPhase.Pending, now);
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
                cause = "recovery: " + S.Message;
                await Scatter(resume: true);
                break;
        }
    }

    // ---- State machine plumbing ----

    async Task End(JobPhase phase, string message)
    {
        running?.Cancel();
        running = null;
        retryAcquire?.Dispose();
        retryAcquire = null;
        waitingSince = null;
        StopGrowthChecks();
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

    /// <summary>
    /// Writes the state. If the store cannot be reached (Redis restarting, issue 20 fault 6) the state
    /// stays in memory, the flow that changed it goes on, and a one-shot timer writes it again (after 1 s,
    /// doubling up to <see cref="RepersistAtMost"/>: each failed write holds the grain for the Redis
    /// client's timeout, 5 s) until a write succeeds: a phase change made while Redis was down is
    /// written late, not lost, and no stage is abandoned halfway because a write failed. A conflict
    /// (<see cref="Orleans.Storage.InconsistentStateException"/>: another writer, or a store that lost the key) still
    /// throws, and Orleans deactivates the grain to read the state again.
    /// </summary>
    async Task Persist()
    {
        try
        {
            await store.WriteStateAsync();
            persistedAt = clock.GetUtcNow();
            if (unsaved is not null) log.LogInformation("job {Job}: state persisted again after {Seconds:F1} s", JobId, (persistedAt - unsaved.Value).TotalSeconds);
            unsaved = null;
            repersistAfter = TimeSpan.Zero;
        }
        catch (Exception e) when (e is not Orleans.Storage.InconsistentStateException)
        {
            if (unsaved is null) log.LogWarning("job {Job}: state not persisted ({Error}); kept in memory and written again once the store answers", JobId, e.Message);
            unsaved ??= clock.GetUtcNow();
            repersistAfter = repersistAfter == TimeSpan.Zero ? TimeSpan.FromSeconds(1) : TimeSpan.FromTicks(Math.Min(repersistAfter.Ticks * 2, RepersistAtMost.Ticks));
            repersist ??= this.RegisterGrainTimer(Repersist, new GrainTimerCreationOptions(repersistAfter, Timeout.InfiniteTimeSpan) { KeepAlive = true });
        }
    }

    Task Repersist()
    {
        repersist?.Dispose();
        repersist = null;
        return unsaved is null ? Task.CompletedTask : Persist();
    }

    async Task<int> NextAttempt()
    {
        running?.Cancel();
        running = new CancellationTokenSource();
        DelayDeactivation(KeepActiveWhileRunning);
        S.Attempt++;
        await Persist();
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

    TrainingRun Run(int attempt, bool resume) => new(JobId, attempt, Spec, S.CheckpointPath, OutDirectory, S.Workers, resume, cause);

    string OutDirectory => JobOutputs.Resolve(Spec.Out, JobId, options.Value.DataDirectory, S.Source);

    JobSnapshot Snapshot() => new()
    {
        JobId = JobId, Name = S.Name, Model = S.Model, Phase = S.Phase, Message = S.Message,
        Step = S.Step, TotalSteps = S.TotalSteps, Loss = S.Loss, ImagesPerSecond = S.ImagesPerSecond,
        Workers = S.Workers.Select(w => w.WorkerId).ToArray(), Recoveries = S.Recoveries,
        CheckpointKey = S.CheckpointKey, CheckpointPath = S.CheckpointPath, CheckpointReused = S.CheckpointReused,
        SubmittedAt = S.SubmittedAt, UpdatedAt = S.UpdatedAt, Version = S.Version,
        LastEval = S.LastEval, OutDirectory = OutDirectory, FinalModelPath = S.FinalModelPath,
        Placement = S.Workers.Count == 0 ? "" : PlacementOf(S.Workers.Count),
    };

    /// <summary>The placement on <paramref name="world"/> workers (a registry lookup and a few divisions; G falls back to the world as the driver's does).</summary>
    string PlacementOf(int world)
    {
        try
        {
            int? g = Spec.Parallel.ExpertParallel is { } e && e >= 1 && world % e == 0 ? e : null;
            return Jetpack.Model.Distributed.ExpertPlacement.Describe(Spec.ResolveModel(), Jetpack.Model.Distributed.ParallelLayout.Of(world, g));
        }
        catch (ArgumentException e) { return $"unknown: {e.Message}"; }
    }

    /// <summary>IProgress without a synchronization context: reports go straight to the grain reference.</summary>
    sealed class Progress(Func<TrainingProgress, Task> report) : IProgress<TrainingProgress>
    {
        volatile EvalResult? lastEval;

        /// <summary>The last evaluation reported (the final model's metadata): read after training returned.</summary>
        public EvalResult? LastEval => lastEval;

        public void Report(TrainingProgress value)
        {
            if (value.Eval is not null) lastEval = value.Eval;
            _ = report(value);
        }
    }
}
