using System.Diagnostics;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Coordinator.Training;
using Jetpack.Protocol.Jobs;

namespace Jetpack.Coordinator.Tests.Grains;

/// <summary>
/// Recoveries are bounded (issue 20 fault 8): a job whose worker is lost in every attempt recovers
/// <c>max_recoveries</c> times, each after a doubling backoff, and then fails with a reason naming
/// the repeated fault and the limit.
/// </summary>
[Collection(InProcessCoordinators.Name)]
public sealed class RecoveryLimitTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public async Task PastMaxRecoveriesTheJobFailsNamingTheRepeatedFaultAndTheBackoffDoubles()
    {
        var driver = new FakeTrainingDriver
        {
            Steps = 2,
            FailEveryAttempt = run => new WorkerLostException(run.Workers[^1].WorkerId, $"rank {run.Workers.Count - 1} (worker '{run.Workers[^1].WorkerId}') does not answer"),
        };
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), driver, heartbeatTimeout: TimeSpan.FromSeconds(30),
                                                             acquireTimeout: TimeSpan.FromSeconds(30));
        foreach (var w in new[] { "w0", "w1" }) await c.RegisterWorker(w);
        using var beating = new CancellationTokenSource();
        var heartbeats = Task.Run(async () =>
        {
            // the lost worker comes back each time (a restarted process registers, as CoordinatorLink does when its
            // heartbeat is refused): only the limit ends the job
            while (!beating.IsCancellationRequested)
            {
                foreach (var w in new[] { "w0", "w1" })
                {
                    try { await c.Workers.HeartbeatAsync(new HeartbeatRequest { WorkerId = w }, c.Call); }
                    catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.NotFound) { await c.RegisterWorker(w); }
                }
                await Task.Delay(50);
            }
        });
        string yaml = JobSpecs.Yaml("flaky", JobSpecs.Checkpoint(dir, "p.safetensors", "p"), workers: 2) + "\nmax_recoveries: 2\nrecovery_backoff_seconds: 0.5\n";
        var clock = Stopwatch.StartNew();
        await c.Submit(yaml);
        var failed = await Await.Until(() => c.Status("flaky"), s => s.Phase is JobPhase.Failed or JobPhase.Completed, "job flaky to end", TimeSpan.FromSeconds(60));
        beating.Cancel();
        await heartbeats;

        Assert.Equal(JobPhase.Failed, failed.Phase);
        Assert.Equal(2, failed.Recoveries);
        Assert.Contains("recoveries exhausted", failed.Message);
        Assert.Contains("max_recoveries 2", failed.Message);
        Assert.Contains("worker 'w1'", failed.Message);                           // the repeated fault, named
        // scatters: the first, then one per recovery, after 0.5 s and 1 s of backoff
        Assert.Equal(3, driver.Scatters.Count);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.5), $"two recoveries with 0.5 s and 1 s of backoff took only {clock.Elapsed.TotalSeconds:F2} s");
    }

    [Fact]
    public void TheBackoffDoublesFromTheSpecsValueUpToItsCap()
    {
        var spec = new Jetpack.Coordinator.Jobs.JobSpec { RecoveryBackoffSeconds = 2 };
        Assert.Equal([2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0], Enumerable.Range(1, 7).Select(n => spec.RecoveryBackoff(n).TotalSeconds));
    }
}
