using Grpc.Core;
using Jetpack.Application.Runs;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.WorkerCluster;

/// <summary>
/// One rank of a cluster as its driver sees it: its WorkerControl client (with the token), a name for
/// messages (the worker id, or "pid N"), and what more can be said when contact with it is lost
/// (the launcher knows the process's exit code and stderr; the coordinator probes instead).
/// </summary>
public sealed record ClusterRank(int Rank, string Name, WorkerControl.WorkerControlClient Control, Func<Task<string>>? WhenLost = null)
{
    public override string ToString() => $"rank {Rank} ({Name})";
}

/// <summary>How a job ended on one rank, and the progress it reported before (rank 0's is all-reduced: the same on every rank).</summary>
public sealed record RankEnd(int Rank, RunEnd End, string Reason, IReadOnlyList<Progress> Progress)
{
    public override string ToString() => End switch
    {
        RunEnd.Completed => $"rank {Rank}: completed",
        _ => $"rank {Rank}: {End.ToString().ToLowerInvariant()}: {Reason}",
    };
}

/// <summary>How a job ended on every rank (in rank order) and the step its ranks started at.</summary>
public sealed record ClusterOutcome(long StartStep, IReadOnlyList<RankEnd> Ranks)
{
    public bool Completed => Ranks.All(r => r.End == RunEnd.Completed);
    public IReadOnlyList<Progress> Rank0 => Ranks[0].Progress;
    public IReadOnlyList<IReadOnlyList<Progress>> Progress => Ranks.Select(r => r.Progress).ToList();

    /// <summary>The first failed rank (in rank order), or null: completed and stopped-on-request are not failures.</summary>
    public RankEnd? Failure => Ranks.FirstOrDefault(r => r.End is not (RunEnd.Completed or RunEnd.Stopped));
}

/// <summary>A call that failed on one rank: the phase, the rank and the status (the first failure when every rank was called).</summary>
public sealed class RankCallException(string phase, ClusterRank rank, RpcException error)
    : Exception($"{phase} on {rank} failed: {error.StatusCode}: {error.Status.Detail}", error)
{
    public string Phase { get; } = phase;
    public ClusterRank Rank { get; } = rank;
    public StatusCode Status { get; } = error.StatusCode;

    /// <summary>The worker did not answer, or its transport broke (rather than refusing the call).</summary>
    public bool Unreachable => Status is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Internal or StatusCode.Aborted;
}

/// <summary>
/// The one driver of a job on a cluster of jetpack-worker processes (over WorkerControl), used by
/// `jetpack train --workers`, the benchmarks and the coordinator: join, scatter, start, watch, stop,
/// probe. Every call goes to every rank at once; the first failure names its rank and phase
/// (<see cref="RankCallException"/>). What to do about a failure (recover, re-plan, give up) is the
/// caller's: this class keeps no state between calls beyond the ranks it was given.
/// </summary>
public sealed class ClusterClient(IReadOnlyList<ClusterRank> ranks)
{
    public IReadOnlyList<ClusterRank> Ranks { get; } = ranks.Select((r, i) => r.Rank == i ? r : throw new ArgumentException($"ranks must be 0..n-1 in order, got {string.Join(", ", ranks.Select(x => x.Rank))}")).ToList();
    public int World => Ranks.Count;

    /// <summary>JoinJob and StartJob (which builds the model and opens the data on the worker) may take this long.</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(3);

    /// <summary>The ranks of launched worker processes; a lost rank is described by its exit code and stderr.</summary>
    public static ClusterClient Of(WorkerLauncher launcher) => new(launcher.Workers.Select(w => new ClusterRank(w.Rank, $"pid {w.Pid}", launcher.Control(w.Rank), async () =>
    {
        await Task.WhenAny(w.Exited, Task.Delay(TimeSpan.FromSeconds(1)));      // a killed process's exit is seen a moment after its stream breaks
        string exit = w.HasExited ? $"process exited with code {await w.Exited}" : "process still running";
        return $"{exit}; stderr: {w.StandardError.Trim()}";
    })).ToList());

    /// <summary>Runs <paramref name="call"/> on every rank at once and waits for all; throws the first failure (in rank order).</summary>
    public async Task<T[]> OnEveryRank<T>(string phase, Func<ClusterRank, Task<T>> call, CancellationToken cancel)
    {
        var results = await Task.WhenAll(Ranks.Select(async r =>
        {
            try { return (Value: await call(r), Error: (RpcException?)null); }
            catch (RpcException e) when (!cancel.IsCancellationRequested) { return (Value: default(T)!, Error: e); }
        }));
        for (int r = 0; r < results.Length; r++)
            if (results[r].Error is { } e) throw new RankCallException(phase, Ranks[r], e);
        return results.Select(x => x.Value).ToArray();
    }

    /// <summary>JoinJob on every rank (all ranks know the run, its world and its peers before any starts a step); returns each rank's process id.</summary>
    public async Task<int[]> JoinAsync(string runId, IReadOnlyList<string> peers, TimeSpan timeout, CancellationToken cancel, Action<ClusterRank, JoinJobReply>? onJoined = null) =>
        await OnEveryRank("JoinJob", async r =>
        {
            var join = new JoinJobRequest { RunId = runId, Rank = r.Rank, WorldSize = World };
            join.Peers.Add(peers);
            var reply = await r.Control.JoinJobAsync(join, deadline: DateTime.UtcNow + timeout, cancellationToken: cancel);
            onJoined?.Invoke(r, reply);
            return reply.ProcessId;
        }, cancel);

    /// <summary>LoadShard on every rank: <paramref name="partOf"/>(rank)'s tensors, read lazily and sent one at a time with their SHA-256.</summary>
    public Task<LoadShardReply[]> ScatterAsync(Func<int, IEnumerable<KeyValuePair<string, Tensor>>> partOf, CancellationToken cancel) =>
        OnEveryRank("LoadShard", r => ShardSender.SendAsync(r.Control, partOf(r.Rank), WireLimits.Default, cancel), cancel);

    /// <summary>StartJob on every rank; returns the step they start at (the same on every rank, or the job cannot run).</summary>
    public async Task<long> StartAsync(StartJobRequest request, TimeSpan timeout, CancellationToken cancel)
    {
        var starts = await OnEveryRank("StartJob", async r => (await r.Control.StartJobAsync(request, deadline: DateTime.UtcNow + timeout, cancellationToken: cancel)).StartStep, cancel);
        if (starts.Distinct().Count() != 1)
            throw new InvalidOperationException($"job '{request.JobId}': ranks start at different steps ({string.Join(", ", starts)})");
        return starts[0];
    }

    /// <summary>
    /// Follows every rank's progress until its final message. <paramref name="onRank0"/> sees rank 0's
    /// steps as they come. With <paramref name="untilFirstFailure"/>, the first rank that fails ends
    /// the watch (the others are reported as still running; completed and stopped on request are not
    /// failures: the other ranks end after the same step); otherwise every rank is followed to its end. A stream that breaks is a failure of that rank, described by <see cref="ClusterRank.WhenLost"/>.
    /// </summary>
    public async Task<ClusterOutcome> WatchAsync(string jobId, long startStep, Action<Progress>? onRank0, bool untilFirstFailure, CancellationToken cancel)
    {
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var watches = Ranks.Select(r => Watch(r, jobId, r.Rank == 0 ? onRank0 : null, watching.Token)).ToList();
        if (untilFirstFailure)
        {
            var pending = watches.ToList();
            while (pending.Count > 0)
            {
                var done = await Task.WhenAny(pending);
                pending.Remove(done);
                if ((await done).End is not (RunEnd.Completed or RunEnd.Stopped)) { watching.Cancel(); break; }
            }
        }
        var ends = new RankEnd[World];
        for (int r = 0; r < World; r++)
        {
            try { ends[r] = await watches[r]; }
            catch (Exception e) when (e is OperationCanceledException or RpcException && watching.IsCancellationRequested && !cancel.IsCancellationRequested) { ends[r] = new RankEnd(r, RunEnd.Unspecified, "still running when another rank failed", []); }
        }
        return new ClusterOutcome(startStep, ends);
    }

    /// <summary>StartJob, then the whole watch (every rank to its end).</summary>
    public async Task<ClusterOutcome> RunAsync(StartJobRequest request, Action<Progress>? onRank0 = null, CancellationToken cancel = default)
    {
        long start;
        try { start = await StartAsync(request, StartTimeout, cancel); }
        catch (RankCallException e) { throw new InvalidOperationException(e.Message, e); }
        return await WatchAsync(request.JobId, start, onRank0, untilFirstFailure: false, cancel);
    }

    /// <summary>
    /// The progress of an earlier run, from whichever of these workers took part in it: a worker keeps its
    /// last job's progress (also once that job ended, or a JoinJob aborted it) until it starts another.
    /// Returns the steps in (<paramref name="after"/>, <paramref name="through"/>], in order, from the worker
    /// that has the most of them within <paramref name="timeout"/> (its earlier rank 0 on a tie), or none.
    /// Loss, learning rate, gradient norm and evaluations are all-reduced, the same on every rank; routing is
    /// only on rank 0's, and the data figures are that rank's own.
    /// </summary>
    public async Task<IReadOnlyList<Progress>> EarlierProgressAsync(string runId, long after, long through, TimeSpan timeout, CancellationToken cancel)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        deadline.CancelAfter(timeout);
        var reads = await Task.WhenAll(Ranks.Select(async r =>
        {
            var steps = new List<Progress>();
            try
            {
                using var call = r.Control.WatchProgress(new ProgressRequest { JobId = runId }, cancellationToken: deadline.Token);
                while (await call.ResponseStream.MoveNext(deadline.Token))
                {
                    var p = call.ResponseStream.Current;
                    if (p.End != RunEnd.Unspecified || p.Step > through) break;
                    if (p.Step > after) steps.Add(p);
                    if (p.Step == through) break;
                }
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException && !cancel.IsCancellationRequested) { /* not there, or not in time: what came is kept */ }
            return steps;
        }));
        return reads.OrderByDescending(s => s.Count).ThenBy(s => s.Count > 0 ? s[0].Rank : int.MaxValue).FirstOrDefault() ?? [];
    }

    /// <summary>
    /// StopJob after <paramref name="afterStep"/> on every rank (every rank stops after the same step, and
    /// a step that is a checkpoint step is saved first); returns the step. A rank already past it refuses
    /// (<see cref="RankCallException"/>, FailedPrecondition): ask for a step far enough ahead.
    /// </summary>
    public async Task<long> StopAfterAsync(string jobId, long afterStep, string reason, TimeSpan timeout, CancellationToken cancel)
    {
        if (afterStep < 1) throw new ArgumentOutOfRangeException(nameof(afterStep), $"a stop for every rank names its step, got {afterStep}");
        await OnEveryRank("StopJob", async r => (await r.Control.StopJobAsync(new StopJobRequest { JobId = jobId, Reason = reason, AfterStep = afterStep },
                                                                             deadline: DateTime.UtcNow + timeout, cancellationToken: cancel)).StoppedAtStep, cancel);
        return afterStep;
    }

    /// <summary>StopJob on every rank that answers within <paramref name="timeout"/> (a rank gone or already ended has nothing to stop).</summary>
    public Task StopAsync(string jobId, string reason, TimeSpan timeout) => Task.WhenAll(Ranks.Select(async r =>
    {
        try { await r.Control.StopJobAsync(new StopJobRequest { JobId = jobId, Reason = reason }, deadline: DateTime.UtcNow + timeout); }
        catch (RpcException) { /* gone or already ended */ }
    }));

    /// <summary>Health on every rank within <paramref name="timeout"/>: its reply, or why it gave none.</summary>
    public Task<(HealthReply? Reply, string? Error)[]> ProbeAsync(TimeSpan timeout) => Task.WhenAll(Ranks.Select(async r =>
    {
        try { return ((HealthReply?)await r.Control.HealthAsync(new HealthRequest(), deadline: DateTime.UtcNow + timeout), (string?)null); }
        catch (RpcException e) { return (null, $"does not answer ({e.StatusCode}: {e.Status.Detail})"); }
    }));

    static async Task<RankEnd> Watch(ClusterRank r, string jobId, Action<Progress>? onEach, CancellationToken cancel)
    {
        var items = new List<Progress>();
        try
        {
            using var call = r.Control.WatchProgress(new ProgressRequest { JobId = jobId }, cancellationToken: cancel);
            while (await call.ResponseStream.MoveNext(cancel))
            {
                var p = call.ResponseStream.Current;
                if (p.End != RunEnd.Unspecified) return new RankEnd(r.Rank, p.End, p.EndReason, items);
                items.Add(p);
                onEach?.Invoke(p);
            }
            return new RankEnd(r.Rank, RunEnd.Failed, "the progress stream ended without a final message", items);
        }
        catch (RpcException e) when (!cancel.IsCancellationRequested)
        {
            string more = r.WhenLost is null ? "" : "; " + await r.WhenLost();
            return new RankEnd(r.Rank, RunEnd.Failed, $"lost contact ({e.StatusCode}: {e.Status.Detail}){more}", items);
        }
    }
}
