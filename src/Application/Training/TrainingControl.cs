using System.Collections.Concurrent;

namespace Jetpack.Application.Training;

/// <summary>
/// Requests to a running <see cref="TrainingLoop"/> from other threads (a gRPC call, a signal):
/// stop after a step, or write a checkpoint after a step. A step already done is refused, so every
/// rank of a distributed run, asked the same, acts after the same step.
/// </summary>
public sealed class TrainingControl
{
    private readonly ConcurrentQueue<(long After, string Dir, TaskCompletionSource<long> Reply)> checkpoints = new();
    private long stopAfter = long.MaxValue;
    private long step;

    /// <summary>The last step done (set by the loop).</summary>
    public long Step { get => Interlocked.Read(ref step); internal set => Interlocked.Exchange(ref step, value); }
    public long StopAfter => Interlocked.Read(ref stopAfter);

    /// <summary>Stop after <paramref name="afterStep"/> (0 = after the running step); returns the step it will stop at.</summary>
    public long RequestStop(long afterStep)
    {
        long done = Step;
        if (afterStep > 0 && afterStep <= done) throw new InvalidOperationException($"past step {afterStep} already (at {done})");
        long at = afterStep > 0 ? afterStep : done + 1;
        Interlocked.Exchange(ref stopAfter, at);
        return at;
    }

    /// <summary>Checkpoint into <paramref name="dir"/> after <paramref name="afterStep"/> (0 = after the running step); completes with the step saved.</summary>
    public Task<long> RequestCheckpoint(string dir, long afterStep)
    {
        long done = Step;
        if (afterStep > 0 && afterStep <= done) throw new InvalidOperationException($"past step {afterStep} already (at {done})");
        var reply = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        checkpoints.Enqueue((afterStep > 0 ? afterStep : done + 1, dir, reply));
        return reply.Task;
    }

    /// <summary>The requested checkpoints due once step <paramref name="done"/> is done (taken off the queue).</summary>
    internal List<(string Dir, TaskCompletionSource<long> Reply)> TakeDue(long done)
    {
        var due = new List<(string, TaskCompletionSource<long>)>();
        int n = checkpoints.Count;
        for (int i = 0; i < n && checkpoints.TryDequeue(out var c); i++)
            if (c.After <= done) due.Add((c.Dir, c.Reply)); else checkpoints.Enqueue(c);
        return due;
    }

    /// <summary>Fails the checkpoint requests still waiting (the run ended before their step).</summary>
    public void FailPending(string why)
    {
        while (checkpoints.TryDequeue(out var c)) c.Reply.TrySetException(new InvalidOperationException($"{why} before step {c.After}"));
    }
}
