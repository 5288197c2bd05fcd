using Grpc.Core;
using Jetpack.Application.Runs;
using Jetpack.Protocol.Wire;

namespace Jetpack.WorkerCluster;

/// <summary>How a job ended on every rank, and rank 0's progress (the losses are all-reduced: the same on every rank).</summary>
public sealed record ClusterJobOutcome(long StartStep, IReadOnlyList<string> FinalStates, IReadOnlyList<IReadOnlyList<Progress>> Progress)
{
    public bool Completed => FinalStates.All(s => s == "completed");
    public IReadOnlyList<Progress> Rank0 => Progress[0];

    /// <summary>The first failure (ranks in order), or null.</summary>
    public string? Failure => FinalStates.Select((s, r) => (s, r)).Where(x => x.s != "completed" && !x.s.StartsWith("stopped", StringComparison.Ordinal))
                                         .Select(x => $"rank {x.r}: {x.s}").FirstOrDefault();
}

/// <summary>
/// Runs one training job on a launched cluster: StartJob on every rank (same job id, spec, resume
/// point), then follows every rank's progress stream until each reports its final state. A worker
/// process that dies ends its stream: that rank's state then says so, with its exit code and stderr.
/// </summary>
public static class ClusterJob
{
    public static async Task<ClusterJobOutcome> RunAsync(WorkerLauncher launcher, WorkerJobSpec spec, string? resumeFrom = null, long untilStep = 0,
                                                         Action<Progress>? onRank0 = null, CancellationToken ct = default)
    {
        int world = launcher.Options.WorldSize;
        string job = launcher.Options.JobId;          // the workers were started with it: no rank refuses an early peer
        var request = new StartJobRequest { JobId = job, SpecJson = spec.ToJson(), ResumeFrom = resumeFrom ?? "", UntilStep = untilStep };
        StartJobReply[] starts;
        try
        {
            starts = await Task.WhenAll(Enumerable.Range(0, world).Select(r => launcher.Control(r).StartJobAsync(request, cancellationToken: ct).ResponseAsync));
        }
        catch (RpcException e)
        {
            throw new InvalidOperationException($"StartJob failed: {e.Status.Detail}", e);
        }
        if (starts.Select(s => s.StartStep).Distinct().Count() != 1)
            throw new InvalidOperationException($"ranks start at different steps: {string.Join(", ", starts.Select(s => s.StartStep))}");
        var watches = Enumerable.Range(0, world).Select(r => Watch(launcher, r, job, r == 0 ? onRank0 : null, ct)).ToArray();
        var results = await Task.WhenAll(watches);
        return new ClusterJobOutcome(starts[0].StartStep, results.Select(r => r.Final).ToList(), results.Select(r => (IReadOnlyList<Progress>)r.Items).ToList());
    }

    private static async Task<(List<Progress> Items, string Final)> Watch(WorkerLauncher launcher, int rank, string job, Action<Progress>? onEach, CancellationToken ct)
    {
        var items = new List<Progress>();
        try
        {
            using var call = launcher.Control(rank).WatchProgress(new ProgressRequest { JobId = job }, cancellationToken: ct);
            while (await call.ResponseStream.MoveNext(ct))
            {
                var p = call.ResponseStream.Current;
                if (p.FinalState.Length > 0) return (items, p.FinalState);
                items.Add(p);
                onEach?.Invoke(p);
            }
            return (items, "failed: the progress stream ended without a final state");
        }
        catch (RpcException e) when (!ct.IsCancellationRequested)
        {
            var w = launcher.Workers[rank];
            string exit = w.HasExited ? $"process exited with code {await w.Exited}" : "process still running";
            return (items, $"failed: lost contact ({e.StatusCode}); {exit}; stderr: {w.StandardError.Trim()}");
        }
    }
}
