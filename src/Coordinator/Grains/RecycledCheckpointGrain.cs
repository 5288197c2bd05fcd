using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Recycling;
using Jetpack.Coordinator.Telemetry;
using Microsoft.Extensions.Logging;

namespace Jetpack.Coordinator.Grains;

/// <summary>
/// Recycles once per content key: the first request starts the recycling on a background task
/// (through <see cref="IRecyclingService"/>), requests that arrive meanwhile wait with it, and
/// every later request gets the finished checkpoint at once. A failed recycling is retried by
/// the next request.
/// </summary>
public sealed class RecycledCheckpointGrain(
    [PersistentState("recycled", StorageNames.Jobs)] IPersistentState<RecycledCheckpointState> store,
    IRecyclingService recycling,
    CoordinatorMetrics metrics,
    ILogger<RecycledCheckpointGrain> log) : Grain, IRecycledCheckpointGrain
{
    RecycledCheckpointState S => store.State;
    bool runningHere;

    public async Task<RecycleTicket> Request(RecycleRequest request, string jobId, int attempt)
    {
        if (request.Key != this.GetPrimaryKeyString()) throw new ArgumentException($"recycle request for key {request.Key} sent to {this.GetPrimaryKeyString()}");
        if (S.Checkpoint is { } done)
        {
            log.LogInformation("checkpoint {Key}: reused by job {Job}", request.Key, jobId);
            return new RecycleTicket(done, Reused: true);
        }
        S.Waiters.RemoveAll(w => w.JobId == jobId);
        S.Waiters.Add((jobId, attempt));
        // Persisted "Running" without a task in this activation means the silo restarted mid-run: run again.
        if (!runningHere) Start(request);
        await store.WriteStateAsync();
        return new RecycleTicket(null, Reused: false);
    }

    void Start(RecycleRequest request)
    {
        S.Running = true;
        runningHere = true;
        int run = ++S.Runs;
        metrics.RecordRecycling();
        log.LogInformation("checkpoint {Key}: recycling (run {Run})", request.Key, run);
        var self = this.AsReference<IRecycledCheckpointGrain>();
        _ = Task.Run(async () =>
        {
            try
            {
                var checkpoint = await recycling.RecycleAsync(request, CancellationToken.None);
                await self.OnRecycled(run, checkpoint);
            }
            catch (Exception e)
            {
                await self.OnRecycleFailed(run, e.Message);
            }
        });
    }

    public Task<RecycledCheckpoint?> GetCheckpoint() => Task.FromResult(S.Checkpoint);

    public Task<int> GetRuns() => Task.FromResult(S.Runs);

    public async Task OnRecycled(int run, RecycledCheckpoint checkpoint)
    {
        if (run != S.Runs) return;
        (S.Checkpoint, S.Running, S.LastError) = (checkpoint, false, "");
        runningHere = false;
        var waiters = S.Waiters.ToList();
        S.Waiters.Clear();
        await store.WriteStateAsync();
        // The first waiter caused the run; the others reuse it.
        foreach (var (w, i) in waiters.Select((w, i) => (w, i)))
            _ = GrainFactory.GetGrain<IJobGrain>(w.JobId).OnCheckpointReady(w.Attempt, checkpoint, reused: i > 0);
    }

    public async Task OnRecycleFailed(int run, string message)
    {
        if (run != S.Runs) return;
        log.LogWarning("checkpoint {Key}: recycling failed: {Message}", this.GetPrimaryKeyString(), message);
        (S.Running, S.LastError) = (false, message);
        runningHere = false;
        var waiters = S.Waiters.ToList();
        S.Waiters.Clear();
        await store.WriteStateAsync();
        foreach (var w in waiters)
            _ = GrainFactory.GetGrain<IJobGrain>(w.JobId).OnStageFailed(w.Attempt, "recycling: " + message);
    }
}
