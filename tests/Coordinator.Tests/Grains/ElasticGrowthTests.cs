using Jetpack.Coordinator.Grains;
using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Protocol.Jobs;

namespace Jetpack.Coordinator.Tests.Grains;

/// <summary>
/// Elastic workers (issue 20 fault 7) in the real coordinator host with the fake driver: a job below its
/// max_workers takes a worker that joins at the next checkpoint boundary — the running attempt is asked
/// to stop after that checkpoint step, and a new attempt resumes from it on more workers — without
/// counting a recovery; recoveries continue on at least min_workers; a worker a partition dropped is
/// not taken back by a growth.
/// </summary>
[Collection(InProcessCoordinators.Name)]
public sealed class ElasticGrowthTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    /// <summary>A 40-step job with a checkpoint every 4 steps (the fake driver reports steps 1..3 per attempt).</summary>
    string Yaml(string name, int workers, string extra = "") =>
        JobSpecs.Yaml(name, JobSpecs.Checkpoint(dir, "p.safetensors", "p"), workers: workers, steps: 40) + "\ncheckpoint_every: 4\nrecovery_backoff_seconds: 0\n" + extra;

    static Task<JobStatus> TrainingOn(TestCoordinator c, string job, params string[] workers) =>
        Await.Until(() => c.Status(job), s => s.Phase == JobPhase.Training && s.Step == 3 && s.Workers.SequenceEqual(workers) || s.Phase is JobPhase.Completed or JobPhase.Failed,
                    $"job {job} training on {string.Join(", ", workers)}", TimeSpan.FromSeconds(30));

    [Theory]
    [InlineData(0, 4)]
    [InlineData(1, 4)]
    [InlineData(5, 8)]
    [InlineData(6, 12)]     // 6 + 3 = 9: the next checkpoint step after that is 12
    public void TheGrowthStepIsTheFirstCheckpointStepAtLeastThreeStepsAhead(long step, long expected) =>
        Assert.Equal(expected, JobGrain.GrowthStep(step, 4));

    [Fact]
    public async Task AJobThatShrankGrowsBackAtTheNextCheckpointWhenAWorkerJoinsAndThatIsNoRecovery()
    {
        var driver = new FakeTrainingDriver { Steps = 3 };
        driver.HoldAttempts.UnionWith([2, 3]);   // 1 = recycling, 2 = on 3 workers, 3 = the recovery on 2; 4 (the growth) completes
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), driver);
        foreach (var w in new[] { "w0", "w1", "w2" }) await c.RegisterWorker(w);
        await c.Submit(Yaml("grow", workers: 3, "elastic: {min_workers: 2}\n"));
        await TrainingOn(c, "grow", "w0", "w1", "w2");

        await c.Grains.GetGrain<IWorkerPoolGrain>(0).ReportLost("w2", "killed by the test");
        var shrunk = await TrainingOn(c, "grow", "w0", "w1");
        Assert.Equal(1, shrunk.Recoveries);
        Assert.Empty(driver.Stops);                                            // no idle worker: no growth

        await c.RegisterWorker("w3");                                          // a worker joins mid-job
        var done = await c.WaitForPhase("grow", JobPhase.Completed, TimeSpan.FromSeconds(30));
        Assert.Equal(1, done.Recoveries);                                      // the growth is not counted
        Assert.Equal("grew from 2 to 3 workers at step 8", done.Message);
        Assert.Equal([(3, 8L)], driver.Stops);                                 // attempt 3 stopped after step 8 (≥ 3 + 3, a multiple of 4)
        var grown = driver.Scatters[^1];
        Assert.Equal(["w0", "w1", "w3"], grown.Workers.Select(w => w.WorkerId));
        Assert.True(grown.Resume);
        Assert.Equal("grew from 2 to 3 workers at step 8", grown.Cause);
        Assert.StartsWith("recovery: ", driver.Scatters[^2].Cause);
        Assert.Equal("start", driver.Scatters[0].Cause);
    }

    [Fact]
    public async Task AJobBelowMaxWorkersGrowsWithoutAFaultAndTheFirstScatterTakesUpToMax()
    {
        var driver = new FakeTrainingDriver { Steps = 3 };
        driver.HoldAttempts.Add(2);
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), driver);
        foreach (var w in new[] { "w0", "w1" }) await c.RegisterWorker(w);
        await c.Submit(Yaml("wide", workers: 2, "elastic: {max_workers: 4}\n"));
        await TrainingOn(c, "wide", "w0", "w1");                              // needs 2, only 2 idle

        await c.RegisterWorker("w2");
        await c.RegisterWorker("w3");
        var done = await c.WaitForPhase("wide", JobPhase.Completed, TimeSpan.FromSeconds(30));
        Assert.Equal(0, done.Recoveries);
        Assert.Matches("^grew from 2 to [34] workers at step 8$", done.Message);   // one check may see one or both
        Assert.Equal(2, driver.Scatters.Count);

        // a second job finds 4 idle workers: its first scatter takes all 4 (max_workers), not just workers: 2
        lock (driver.HoldAttempts) driver.HoldAttempts.Clear();
        await c.Submit(Yaml("wide-2", workers: 2, "elastic: {max_workers: 4}\n"));
        await c.WaitForPhase("wide-2", JobPhase.Completed, TimeSpan.FromSeconds(30));
        Assert.Equal(["w0", "w1", "w2", "w3"], driver.Scatters[^1].Workers.Select(w => w.WorkerId));
    }

    [Fact]
    public async Task ARefusedStopLeavesTheJobTrainingAndTheNextCheckAsksAgain()
    {
        var driver = new FakeTrainingDriver { Steps = 3, RefuseStops = 1 };
        driver.HoldAttempts.Add(2);
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), driver);
        foreach (var w in new[] { "w0", "w1" }) await c.RegisterWorker(w);
        await c.Submit(Yaml("refused", workers: 2, "elastic: {max_workers: 3}\n"));
        await TrainingOn(c, "refused", "w0", "w1");
        await c.RegisterWorker("w2");
        var done = await c.WaitForPhase("refused", JobPhase.Completed, TimeSpan.FromSeconds(30));
        Assert.Equal(0, driver.RefuseStops);                                   // the first stop was refused …
        Assert.Equal([(2, 8L)], driver.Stops);                                 // … and the next check's accepted
        Assert.Equal((0, "grew from 2 to 3 workers at step 8"), (done.Recoveries, done.Message));
    }

    [Fact]
    public async Task AGrowthLeavesOutAWorkerAPartitionDropped()
    {
        var driver = new FakeTrainingDriver { Steps = 3 };
        driver.HoldAttempts.UnionWith([2, 3]);
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), driver);
        foreach (var w in new[] { "w0", "w1", "w2" }) await c.RegisterWorker(w);
        await c.Submit(Yaml("cut", workers: 3));
        await TrainingOn(c, "cut", "w0", "w1", "w2");

        // w2 still heartbeats (idle, alive) but cannot reach the others: a growth must not take it back
        await c.Grains.GetGrain<IJobGrain>("cut").OnPartitioned(2, ["w2"], "partition: w2 cut from w0 and w1");
        await TrainingOn(c, "cut", "w0", "w1");
        await c.RegisterWorker("w3");
        var done = await c.WaitForPhase("cut", JobPhase.Completed, TimeSpan.FromSeconds(30));
        Assert.Equal(1, done.Recoveries);
        Assert.Equal(["w0", "w1", "w3"], driver.Scatters[^1].Workers.Select(w => w.WorkerId));
    }

    [Fact]
    public async Task ARecoveryBelowMinWorkersFailsAfterTheAcquireTimeoutNamingTheCount()
    {
        var driver = new FakeTrainingDriver { Steps = 3 };
        driver.HoldAttempts.Add(2);
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), driver, acquireTimeout: TimeSpan.FromSeconds(2));
        foreach (var w in new[] { "w0", "w1" }) await c.RegisterWorker(w);
        await c.Submit(Yaml("firm", workers: 2, "elastic: {min_workers: 2}\n"));
        await TrainingOn(c, "firm", "w0", "w1");
        await c.Grains.GetGrain<IWorkerPoolGrain>(0).ReportLost("w1", "killed by the test");
        var failed = await c.WaitForPhase("firm", JobPhase.Failed, TimeSpan.FromSeconds(30));
        Assert.Contains("recovery: job 'firm' needs 2 workers, 1 idle of 1 live", failed.Message);
    }
}
