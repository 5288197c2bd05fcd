using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Jobs;
using Microsoft.Extensions.Logging;

namespace Jetpack.Coordinator.Grains;

/// <summary>
/// Elastic growth (issue 20 fault 7): while a job trains on fewer than <see cref="JobSpec.MaxWorkers"/>
/// workers (elastic.max_workers, default <c>workers</c>: a job that shrank after a fault grows back), a
/// timer asks the pool every <see cref="GrowthCheckEvery"/> for live idle workers. When there are some,
/// every rank is asked to stop after the next checkpoint step at least <see cref="GrowthMarginSteps"/>
/// steps ahead (StopJob with that step: the ranks save the checkpoint, then end, so no step beyond it
/// is lost), and a new attempt scatters that checkpoint onto the workers the pool gives, up to
/// max_workers. A growth is not a recovery: it is not counted against max_recoveries; the job's message
/// and attempts.jsonl say "grew from 2 to 3 workers at step N".
/// </summary>
public sealed partial class JobGrain
{
    static readonly TimeSpan GrowthCheckEvery = TimeSpan.FromSeconds(1);
    /// <summary>How far ahead of rank 0's last reported step the stop step must lie: a rank may already be a
    /// step or two further than the report (a rank past the step refuses the stop, and the growth waits for
    /// the next check).</summary>
    const int GrowthMarginSteps = 3;

    IGrainTimer? growthCheck;
    /// <summary>The step the running attempt was asked to stop after to grow, or null.</summary>
    long? growAt;
    /// <summary>The last attempt that reported progress: a stop needs ranks that have started.</summary>
    int progressed;

    /// <summary>The first checkpoint step at least <see cref="GrowthMarginSteps"/> after <paramref name="step"/>.</summary>
    public static long GrowthStep(long step, int checkpointEvery)
    {
        long earliest = step + GrowthMarginSteps;
        return (earliest + checkpointEvery - 1) / checkpointEvery * checkpointEvery;
    }

    void StartGrowthChecks()
    {
        StopGrowthChecks();
        if (S.Workers.Count < Spec.MaxWorkers)
            growthCheck = this.RegisterGrainTimer(CheckGrowth, new GrainTimerCreationOptions(GrowthCheckEvery, GrowthCheckEvery));
    }

    void StopGrowthChecks()
    {
        growthCheck?.Dispose();
        growthCheck = null;
        growAt = null;
    }

    async Task CheckGrowth()
    {
        if (S.Phase != JobPhase.Training || S.Workers.Count >= Spec.MaxWorkers) { StopGrowthChecks(); return; }
        if (growAt is not null || progressed != S.Attempt || running is null) return;
        long step = GrowthStep(S.Step, Spec.CheckpointEvery);
        if (step >= Spec.Recipe.Steps) { StopGrowthChecks(); return; }                  // the job ends before the next boundary
        int idle = (await Pool.Members()).Count(m => m.Alive && m.Assignment is null && !partitionedEver.Contains(m.Registration.WorkerId));
        if (idle == 0 || running is null || S.Phase != JobPhase.Training) return;        // (a timer turn does not interleave; kept safe if it ever does)
        int from = S.Workers.Count, to = Math.Min(Spec.MaxWorkers, from + idle);
        growAt = step;
        string reason = $"growing from {from} to {to} workers after the checkpoint of step {step}";
        log.LogInformation("job {Job}: {Reason} ({Idle} idle worker(s); at step {Now})", JobId, reason, idle, S.Step);
        S.Message = reason;
        Changed();
        var (self, run, attempt, cancel) = (this.AsReference<IJobGrain>(), Run(S.Attempt, false), S.Attempt, running.Token);
        _ = Task.Run(async () =>
        {
            try { await driver.StopAfterAsync(run, step, reason, cancel); }
            catch (Exception e) when (!cancel.IsCancellationRequested) { await self.OnGrowthRefused(attempt, step, e.Message); }
        }, CancellationToken.None);
    }

    public Task OnGrowthRefused(int attempt, long step, string reason)
    {
        if (!Current(attempt, JobPhase.Training, nameof(OnGrowthRefused)) || growAt != step) return Task.CompletedTask;
        // The next check asks again for a later step: on ranks that accepted, the later stop replaces this one.
        log.LogWarning("job {Job}: growth after step {Step} refused, asking again at the next check: {Reason}", JobId, step, reason);
        growAt = null;
        S.Message = $"growth after step {step} refused: {reason}";
        Changed();
        return Task.CompletedTask;
    }

    public async Task OnTrainingStopped(int attempt, long step)
    {
        if (!Current(attempt, JobPhase.Training, nameof(OnTrainingStopped))) return;
        if (growAt is null)
        {
            await End(JobPhase.Failed, $"training: every rank stopped after step {step}, which the coordinator did not ask for");
            return;
        }
        StopGrowthChecks();
        running?.Cancel();
        running = null;
        int from = S.Workers.Count;
        var held = S.Workers.Select(w => w.WorkerId).ToHashSet(StringComparer.Ordinal);
        var acquired = await Pool.Acquire(JobId, Spec.MaxWorkers, Spec.MinWorkers, [.. partitionedEver.Where(w => !held.Contains(w))]);
        if (acquired.Error is not null)
        {
            await Recover($"growth after step {step}: {acquired.Error}");                 // workers went away meanwhile: a fault after all
            return;
        }
        int to = acquired.Workers.Count;
        cause = to > from ? $"grew from {from} to {to} workers at step {step}" : $"resumed on {to} workers at step {step} (the idle workers were gone)";
        log.LogInformation("job {Job}: {Cause}", JobId, cause);
        if (to > from) metrics.RecordGrowth(JobId);
        S.Message = cause;
        await StartScatter(acquired.Workers, resume: true);
    }
}
