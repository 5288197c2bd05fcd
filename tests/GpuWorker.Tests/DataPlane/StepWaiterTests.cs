using System.Diagnostics;
using Jetpack.GpuWorker.DataPlane;
using Jetpack.Model.Distributed;

namespace Jetpack.GpuWorker.Tests.DataPlane;

/// <summary>A step's error names every peer that failed at the same time, not only the one heard of first.</summary>
public class StepWaiterTests
{
    static async Task Fail(int ms, string why) { await Task.Delay(ms); throw new IOException(why); }

    [Fact]
    public async Task FailuresWithinTheGraceAreNamedTogether()
    {
        using var cts = new CancellationTokenSource();
        var ops = new StepWaiter.Op[]
        {
            new(Fail(10, "rank 0 gave the step up"), 0, "receive from"),
            new(Fail(60, "connection refused"), 2, "receive from"),
            new(Task.Delay(Timeout.Infinite, cts.Token), 3, "send to"),        // ends only when the step is cancelled
        };
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<ExchangeFailedException>(() => StepWaiter.AllOrFirstFailure(ops, 1, "step 3 GradDispatch", TimeSpan.FromSeconds(30), cts));
        Assert.Equal("rank 1: step 3 GradDispatch: receive from rank 0 failed: rank 0 gave the step up; also receive from rank 2 failed: connection refused", e.Message);
        Assert.True(cts.IsCancellationRequested);                                // the step's other sends are cancelled
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"{clock.Elapsed.TotalSeconds:F1} s");   // the grace, not the deadline
    }

    [Fact]
    public async Task AFailureAfterTheGraceIsNotWaitedFor()
    {
        using var cts = new CancellationTokenSource();
        var ops = new StepWaiter.Op[] { new(Fail(0, "refused"), 2, "send to"), new(Fail(20_000, "late"), 0, "receive from") };
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<ExchangeFailedException>(() => StepWaiter.AllOrFirstFailure(ops, 1, "t", TimeSpan.FromSeconds(30), cts));
        Assert.Equal("rank 1: t: send to rank 2 failed: refused", e.Message);
        Assert.InRange(clock.Elapsed, StepWaiter.FailureGrace - TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(10));
    }
}
