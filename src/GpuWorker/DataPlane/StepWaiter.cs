using Grpc.Core;
using Jetpack.Model.Distributed;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// Awaits the sends and receives of one exchange step, failing on the first failure rather than
/// after all of them: a peer that died makes its send fail at once (connection refused) or its
/// piece miss the deadline — never a hang. The error names this rank, the tag and the peer, and every
/// other peer whose send or receive failed within <see cref="FailureGrace"/> of the first. An
/// abort (the worker leaves the run for another one) ends the step at once, saying so.
/// </summary>
public static class StepWaiter
{
    public readonly record struct Op(Task Task, int Peer, string Role);

    /// <param name="cts">cancels the step's sends when the step fails; linked to <paramref name="abort"/></param>
    /// <param name="peerDead">completes with the reason when the data plane's liveness check finds a peer dead
    /// (<see cref="PeerLiveness"/>): the step fails then, long before the deadline</param>
    public static async Task AllOrFirstFailure(IReadOnlyList<Op> ops, int rank, string tag, TimeSpan deadline, CancellationTokenSource cts,
                                               CancellationToken abort = default, Task<string>? peerDead = null)
    {
        var pending = ops.ToList();
        var timeout = Task.Delay(deadline, cts.Token);
        var dead = peerDead ?? new TaskCompletionSource<string>().Task;
        while (pending.Count > 0)
        {
            var done = await Task.WhenAny(pending.Select(o => o.Task).Append(timeout).Append(dead));
            if (done == dead)
            {
                cts.Cancel();
                var late = string.Join(", ", pending.Select(o => $"{o.Role} rank {o.Peer}"));
                throw new ExchangeFailedException($"rank {rank}: {tag}: {dead.Result} (waiting for {late})");
            }
            if (abort.IsCancellationRequested)
            {
                cts.Cancel();
                throw new ExchangeFailedException($"rank {rank}: {tag}: aborted: this worker left the run");
            }
            if (done == timeout)
            {
                cts.Cancel();
                var late = string.Join(", ", pending.Select(o => $"{o.Role} rank {o.Peer}"));
                throw new ExchangeFailedException($"rank {rank}: {tag}: deadline of {deadline.TotalSeconds:F1} s passed waiting for {late}");
            }
            var op = Take(pending, done);
            if (op.Task.IsCompletedSuccessfully) continue;
            // Failures come together: a dead rank refuses its connections while a survivor that met it first gives
            // the step up, and this rank may hear of the survivor first. A short grace, before the step's own sends
            // are cancelled, collects what fails at the same time, so the error names the root cause as well.
            var failed = new List<Op> { op };
            var graceEnd = Task.Delay(FailureGrace);
            while (pending.Count > 0)
            {
                var next = await Task.WhenAny(pending.Select(o => o.Task).Append(graceEnd));
                if (next == graceEnd) break;
                var other = Take(pending, next);
                if (!other.Task.IsCompletedSuccessfully) failed.Add(other);
            }
            cts.Cancel();
            var error = Error(op);
            string also = failed.Count > 1 ? "; also " + string.Join("; ", failed.Skip(1).Select(Failure)) : "";
            throw new ExchangeFailedException($"rank {rank}: {tag}: {Failure(op)}{also}", error);
        }
    }

    /// <summary>How long after a step's first failed send or receive the others that fail too are still collected.</summary>
    public static readonly TimeSpan FailureGrace = TimeSpan.FromMilliseconds(250);

    static Op Take(List<Op> pending, Task done)
    {
        int i = pending.FindIndex(o => o.Task == done);
        var op = pending[i];
        pending.RemoveAt(i);
        return op;
    }

    static Exception Error(Op op) => op.Task.Exception?.GetBaseException() ?? new TaskCanceledException();

    static string Failure(Op op)
    {
        var error = Error(op);
        string detail = error is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : error.Message;
        return $"{op.Role} rank {op.Peer} failed: {detail}";
    }
}
