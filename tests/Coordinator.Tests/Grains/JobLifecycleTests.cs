using Grpc.Core;
using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Coordinator.Training;
using Jetpack.Protocol.Jobs;
using JobPhaseDomain = Jetpack.Coordinator.Jobs.JobPhase;

namespace Jetpack.Coordinator.Tests.Grains;

/// <summary>
/// The job state machine in the real coordinator host (silo + JobService + WorkerRegistry over
/// gRPC), with a fake recycler and a fake training driver standing in for the engine.
/// </summary>
[Collection(InProcessCoordinators.Name)]
public sealed class JobLifecycleTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public async Task AJobGoesThroughEveryPhaseAndWatchSeesProgress()
    {
        var recycler = new FakeRecycler(dir.Path);
        var driver = new FakeTrainingDriver { Steps = 4 };
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), recycler, driver);
        await c.RegisterWorker("w0");
        await c.RegisterWorker("w1");

        string pred = JobSpecs.Checkpoint(dir, "pred.safetensors", "weights-a");
        // Hold the recycling so that Watch is already streaming when the phases change.
        recycler.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var submitted = await c.Submit(JobSpecs.Yaml("job-a", pred, workers: 2, steps: 4));
        Assert.Equal(JobPhase.Recycling, submitted.Phase);

        using var watch = c.Jobs.Watch(new JobRequest { JobId = "job-a" }, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(30)));
        var seen = new List<JobStatus>();
        Assert.True(await watch.ResponseStream.MoveNext(default));
        seen.Add(watch.ResponseStream.Current);
        // Training is held until Watch has shown it: the whole phase could otherwise pass between two long polls.
        driver.TrainGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        recycler.Gate.SetResult();
        while (await watch.ResponseStream.MoveNext(default))
        {
            seen.Add(watch.ResponseStream.Current);
            if (watch.ResponseStream.Current.Phase == JobPhase.Training) driver.TrainGate.TrySetResult();
        }

        var phases = seen.Select(s => s.Phase).Distinct().ToList();
        Assert.Equal([JobPhase.Recycling, JobPhase.Scattering, JobPhase.Training, JobPhase.Completed], phases);
        Assert.True(seen.Zip(seen.Skip(1)).All(p => p.Second.Version > p.First.Version), "versions increase");
        var last = seen[^1];
        Assert.Equal((4L, 4L, 0.5), (last.Step, last.TotalSteps, last.Loss));
        Assert.Equal(200, last.ImagesPerSecond);            // 100 per worker in the fake driver
        Assert.Empty(last.Workers);                          // released at the end
        Assert.Equal(1, recycler.Calls);
        Assert.False(last.CheckpointReused);
        Assert.Equal(64, last.CheckpointKey.Length);

        var run = Assert.Single(driver.Scatters);
        Assert.Equal(["w0", "w1"], run.Workers.Select(w => w.WorkerId));
        Assert.Equal([0, 1], run.Workers.Select(w => w.Rank));
        Assert.False(run.Resume);
        Assert.Equal(last.CheckpointPath, run.CheckpointPath);

        var workers = await c.Workers.ListWorkersAsync(new ListWorkersRequest(), c.Call);
        Assert.All(workers.Workers, w => Assert.Equal("", w.JobId));
    }

    [Fact]
    public async Task ASecondJobWithTheSameKeyReusesTheRecycledCheckpoint()
    {
        var recycler = new FakeRecycler(dir.Path) { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), recycler, new FakeTrainingDriver());
        foreach (var w in new[] { "w0", "w1", "w2" }) await c.RegisterWorker(w);
        // Same content under two file names: same key. A different seed: a different key.
        string a = JobSpecs.Checkpoint(dir, "a.safetensors", "same-bytes");
        string b = JobSpecs.Checkpoint(dir, "b.safetensors", "same-bytes");

        await c.Submit(JobSpecs.Yaml("first", a));
        await c.Submit(JobSpecs.Yaml("concurrent", b));   // arrives while the first recycling runs
        await Await.Until(() => Task.FromResult(recycler.Calls), n => n >= 1, "the first recycling to start");
        recycler.Gate.SetResult();
        var first = await c.WaitForPhase("first", JobPhase.Completed);
        var concurrent = await c.WaitForPhase("concurrent", JobPhase.Completed);
        var later = await c.Submit(JobSpecs.Yaml("later", a));
        later = await c.WaitForPhase("later", JobPhase.Completed);
        var otherSeed = await c.Submit(JobSpecs.Yaml("other-seed", a, seed: 1));
        otherSeed = await c.WaitForPhase("other-seed", JobPhase.Completed);

        Assert.Equal(2, recycler.Calls);   // once for the shared key, once for the other seed
        Assert.Equal(first.CheckpointKey, concurrent.CheckpointKey);
        Assert.Equal(first.CheckpointKey, later.CheckpointKey);
        Assert.NotEqual(first.CheckpointKey, otherSeed.CheckpointKey);
        Assert.Equal(first.CheckpointPath, later.CheckpointPath);
        Assert.Equal(1, new[] { first, concurrent }.Count(s => !s.CheckpointReused));
        Assert.True(later.CheckpointReused);
        Assert.Equal(1, await c.Grains.GetGrain<IRecycledCheckpointGrain>(first.CheckpointKey).GetRuns());
    }

    [Fact]
    public async Task AWorkerWhoseHeartbeatIsTooOldIsDeadAndItsJobRecoversOnTheOthers()
    {
        var driver = new FakeTrainingDriver { Steps = 3 };
        driver.HoldAttempts.Add(2); // attempt 1 = recycling, 2 = the first scatter/training: keeps training
        // 3 s, not less: under a full parallel test run on 2 cores, a 1 s timeout once let the live w2's
        // heartbeat age past it, and the job recovered on w0 alone (2026-12-04)
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), driver, heartbeatTimeout: TimeSpan.FromSeconds(3));
        foreach (var w in new[] { "w0", "w1", "w2" }) await c.RegisterWorker(w);
        using var beating = new CancellationTokenSource();
        var alive = new HashSet<string> { "w0", "w1", "w2" };
        var heartbeats = Task.Run(async () =>
        {
            while (!beating.IsCancellationRequested)
            {
                string[] now;
                lock (alive) now = [.. alive];
                foreach (var w in now) await c.Workers.HeartbeatAsync(new HeartbeatRequest { WorkerId = w }, c.Call);
                await Task.Delay(100);
            }
        });

        await c.Submit(JobSpecs.Yaml("job-r", JobSpecs.Checkpoint(dir, "p.safetensors", "p"), workers: 2));
        var training = await Await.Until(() => c.Status("job-r"), s => s.Phase == JobPhase.Training && s.Step == 3, "job-r training at step 3");
        Assert.Equal(["w0", "w1"], training.Workers);

        lock (alive) alive.Remove("w1");   // w1 stops heartbeating
        var recovered = await Await.Until(() => c.Status("job-r"), s => s.Phase == JobPhase.Completed, "job-r to recover and complete", TimeSpan.FromSeconds(20));
        Assert.Equal(1, recovered.Recoveries);
        Assert.Contains("w1", recovered.Message);
        var resumed = driver.Scatters[^1];
        Assert.True(resumed.Resume);
        Assert.Equal(["w0", "w2"], resumed.Workers.Select(w => w.WorkerId));   // the dead worker is not handed out again

        var members = (await c.Workers.ListWorkersAsync(new ListWorkersRequest(), c.Call)).Workers.ToDictionary(w => w.WorkerId);
        Assert.False(members["w1"].Alive);
        Assert.True(members["w1"].HeartbeatAgeSeconds >= 3);
        Assert.True(members["w0"].Alive);
        beating.Cancel();
        await heartbeats;
    }

    [Fact]
    public async Task CancelEndsALiveJobReleasesItsWorkersAndIsIdempotent()
    {
        var driver = new FakeTrainingDriver();
        driver.HoldAttempts.Add(2);
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), driver);
        await c.RegisterWorker("w0");
        await c.Submit(JobSpecs.Yaml("job-c", JobSpecs.Checkpoint(dir, "p.safetensors", "p")));
        await Await.Until(() => c.Status("job-c"), s => s.Phase == JobPhase.Training && s.Step == 5, "job-c training");

        var cancelled = await c.Jobs.CancelAsync(new JobRequest { JobId = "job-c" }, c.Call);
        Assert.Equal(JobPhase.Cancelled, cancelled.Phase);
        Assert.Empty(cancelled.Workers);
        var again = await c.Jobs.CancelAsync(new JobRequest { JobId = "job-c" }, c.Call);
        Assert.Equal((JobPhase.Cancelled, cancelled.Version), (again.Phase, again.Version));
        var w0 = Assert.Single((await c.Workers.ListWorkersAsync(new ListWorkersRequest(), c.Call)).Workers);
        Assert.Equal("", w0.JobId);
    }

    [Fact]
    public async Task SubmitIsIdempotentAndRefusesAConflictAnUnknownJobAndABadSpecWithExactCodes()
    {
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), new FakeTrainingDriver());
        string spec = JobSpecs.Yaml("job-i", JobSpecs.Checkpoint(dir, "p.safetensors", "p"));
        var first = await c.Submit(spec);
        var failed = await c.WaitForPhase("job-i", JobPhase.Failed);   // no workers registered
        Assert.Contains("needs 1 worker, 0 idle of 0 live", failed.Message);
        var again = await c.Submit(spec);
        Assert.Equal((first.JobId, failed.Version), (again.JobId, again.Version));

        var conflict = await Assert.ThrowsAsync<RpcException>(() => c.Submit(spec.Replace("steps: 5", "steps: 6")));
        Assert.Equal(StatusCode.AlreadyExists, conflict.StatusCode);
        Assert.Contains("job-i", conflict.Status.Detail);

        var missing = await Assert.ThrowsAsync<RpcException>(() => c.Status("nope"));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        Assert.Contains("'nope'", missing.Status.Detail);

        var invalid = await Assert.ThrowsAsync<RpcException>(() => c.Submit(spec.Replace("steps: 5", "steps: 0"), jobId: "job-j"));
        Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
        Assert.Contains("test.yaml: recipe.steps: must be ≥ 1", invalid.Status.Detail);

        var list = await c.Jobs.ListAsync(new ListJobsRequest(), c.Call);
        Assert.Equal(["job-i"], list.Jobs.Select(j => j.JobId));
    }

    [Fact]
    public async Task ReportsThatDoNotFitThePhaseOrAttemptAreRefused()
    {
        var recycler = new FakeRecycler(dir.Path) { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), recycler, new FakeTrainingDriver());
        await c.RegisterWorker("w0");
        await c.Submit(JobSpecs.Yaml("job-x", JobSpecs.Checkpoint(dir, "p.safetensors", "p")));
        var job = c.Grains.GetGrain<IJobGrain>("job-x");
        var before = (await job.GetStatus())!;
        // Recycling → Training/Completed skips phases; a stale attempt's failure is not this attempt's.
        await job.OnScattered(1, new ScatterPlan("job-x#1", [0], 1, "{}", null));
        await job.OnTrainingCompleted(1, "");
        await job.OnProgress(1, new TrainingProgress(3, 5, 0.1, 1));
        await job.OnStageFailed(0, "a report from an abandoned attempt");
        var after = (await job.GetStatus())!;
        Assert.Equal((JobPhaseDomain.Recycling, before.Version, ""), (after.Phase, after.Version, after.Message));
        recycler.Gate.SetResult();
        await c.WaitForPhase("job-x", JobPhase.Completed);
    }

    [Fact]
    public async Task AJobWaitsForWorkersThatRegisterWithinTheAcquireTimeout()
    {
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), new FakeTrainingDriver(), acquireTimeout: TimeSpan.FromSeconds(60));
        await c.Submit(JobSpecs.Yaml("job-w", JobSpecs.Checkpoint(dir, "p.safetensors", "p"), workers: 2));
        var waiting = await Await.Until(() => c.Status("job-w"), s => s.Message.StartsWith("waiting for workers"), "job-w to wait for workers");
        Assert.Equal(JobPhase.Recycling, waiting.Phase);
        Assert.Contains("needs 2 workers, 0 idle of 0 live", waiting.Message);
        await c.RegisterWorker("late-0");
        await c.RegisterWorker("late-1");
        var done = await c.WaitForPhase("job-w", JobPhase.Completed);
        Assert.Equal("", done.Message);
    }

    [Fact]
    public async Task ARecyclingFailureFailsTheJobWithTheReason()
    {
        var recycler = new FakeRecycler(dir.Path) { FailWith = "predecessor has no blocks.3.mlp.fc1.weight" };
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), recycler, new FakeTrainingDriver());
        await c.Submit(JobSpecs.Yaml("job-f", JobSpecs.Checkpoint(dir, "p.safetensors", "p")));
        var failed = await c.WaitForPhase("job-f", JobPhase.Failed);
        Assert.Equal("recycling: predecessor has no blocks.3.mlp.fc1.weight", failed.Message);
    }

    [Fact]
    public async Task TheWorkerRegistryRefusesBadRegistrationsAndHeartbeatsOfStrangers()
    {
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), new FakeTrainingDriver());
        var stranger = await Assert.ThrowsAsync<RpcException>(() => c.Workers.HeartbeatAsync(new HeartbeatRequest { WorkerId = "ghost" }, c.Call).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, stranger.StatusCode);
        Assert.Contains("'ghost'", stranger.Status.Detail);
        var badEndpoint = await Assert.ThrowsAsync<RpcException>(() => c.Workers.RegisterAsync(new RegisterWorkerRequest { WorkerId = "w9", Endpoint = "not a url", Slots = 1 }, c.Call).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, badEndpoint.StatusCode);
        Assert.Contains("endpoint", badEndpoint.Status.Detail);
        var noSlots = await Assert.ThrowsAsync<RpcException>(() => c.Workers.RegisterAsync(new RegisterWorkerRequest { WorkerId = "w9", Endpoint = "http://h:1", Slots = 0 }, c.Call).ResponseAsync);
        Assert.Contains("slots must be ≥ 1", noSlots.Status.Detail);
        Assert.Empty((await c.Workers.ListWorkersAsync(new ListWorkersRequest(), c.Call)).Workers);
        // Registering twice is harmless.
        await c.RegisterWorker("w1");
        await c.RegisterWorker("w1");
        Assert.Single((await c.Workers.ListWorkersAsync(new ListWorkersRequest(), c.Call)).Workers);
    }

    [Fact]
    public async Task WithAClusterTokenEveryCallNeedsIt()
    {
        const string token = "0123456789abcdef-test-token";
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), new FakeTrainingDriver(), configure: o => o.ClusterToken = token);
        var e = await Assert.ThrowsAsync<RpcException>(() => c.Jobs.ListAsync(new ListJobsRequest(), new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10))).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        var wrong = new Metadata { { "authorization", "Bearer not-the-token-at-all" } };
        e = await Assert.ThrowsAsync<RpcException>(() => c.Workers.RegisterAsync(new RegisterWorkerRequest { WorkerId = "w", Endpoint = "http://x:1", Slots = 1 }, new CallOptions(wrong)).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        Assert.Empty((await c.Jobs.ListAsync(new ListJobsRequest(), c.Call)).Jobs);   // c.Call carries the token
    }
}
