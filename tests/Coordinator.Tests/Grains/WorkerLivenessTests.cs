using Grpc.Core;
using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Protocol.Jobs;

namespace Jetpack.Coordinator.Tests.Grains;

/// <summary>
/// The pool's liveness rule in the real coordinator host, on a clock the test moves: a worker that missed its
/// heartbeats for the timeout is never handed to a job again until it registers again — not even after a heartbeat
/// arrives late. Issue 20, fault 2: a worker killed while its link was down still had heartbeats in its kernel's send
/// queue; when the link came back the kernel delivered them, the coordinator counted the dead worker alive for a
/// heartbeat timeout, and the next job was handed it.
/// </summary>
[Collection(InProcessCoordinators.Name)]
public sealed class WorkerLivenessTests : IDisposable
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(7);
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    static async Task<ListWorkersReply> Members(TestCoordinator c) => await c.Workers.ListWorkersAsync(new ListWorkersRequest(), c.Call);

    static Task<WorkerReply> Heartbeat(TestCoordinator c, string id) => c.Workers.HeartbeatAsync(new HeartbeatRequest { WorkerId = id }, c.Call).ResponseAsync;

    [Fact]
    public async Task AWorkerCountedDeadIsNotRevivedByALateHeartbeatNorHandedToANewJobUntilItRegistersAgain()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 12, 6, 0, 0, 0, TimeSpan.Zero));
        var driver = new FakeTrainingDriver { Steps = 2 };
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), driver, heartbeatTimeout: Timeout, clock: clock);
        await c.RegisterWorker("a-dead");
        await c.RegisterWorker("b-live");
        clock.Advance(TimeSpan.FromSeconds(4));
        await Heartbeat(c, "b-live");
        clock.Advance(TimeSpan.FromSeconds(4));   // a-dead: 8 s without a heartbeat (timeout 7 s); b-live: 4 s
        await Heartbeat(c, "b-live");
        await Await.Until(() => Members(c), m => m.Workers.Single(w => w.WorkerId == "a-dead") is { Alive: false },
                          "the pool to count a-dead dead after 8 s without a heartbeat", TimeSpan.FromSeconds(30));

        // The heartbeat a-dead's kernel held back arrives now: it is refused, and a-dead stays dead.
        var late = await Assert.ThrowsAsync<RpcException>(() => Heartbeat(c, "a-dead"));
        Assert.Equal(StatusCode.NotFound, late.StatusCode);
        Assert.Contains("worker 'a-dead' was counted dead", late.Status.Detail);
        Assert.Contains("stopped heartbeating (last heartbeat 8.0 s ago, timeout 7.0 s)", late.Status.Detail);
        Assert.Contains("register again", late.Status.Detail);
        var members = (await Members(c)).Workers.ToDictionary(w => w.WorkerId);
        Assert.False(members["a-dead"].Alive, "a late heartbeat brought a-dead back");
        Assert.True(members["b-live"].Alive);

        // A new job is not handed a-dead: with 2 workers needed it fails at once (acquire timeout 0) on 1 live.
        await c.Submit(JobSpecs.Yaml("needs-two", JobSpecs.Checkpoint(dir, "p.safetensors", "p"), workers: 2));
        var failed = await c.WaitForPhase("needs-two", JobPhase.Failed);
        Assert.Contains("needs 2 workers, 1 idle of 1 live (2 registered)", failed.Message);
        Assert.Empty(driver.Scatters);

        // A live worker answers the refusal by registering (CoordinatorLink does at once): then it is handed out again.
        await c.RegisterWorker("a-dead");
        Assert.True((await Members(c)).Workers.Single(w => w.WorkerId == "a-dead").Alive);
        await Heartbeat(c, "a-dead");
        await c.Submit(JobSpecs.Yaml("after-register", JobSpecs.Checkpoint(dir, "q.safetensors", "q"), workers: 2));
        await c.WaitForPhase("after-register", JobPhase.Completed);
        Assert.Equal(["a-dead", "b-live"], Assert.Single(driver.Scatters).Workers.Select(w => w.WorkerId));
    }

    [Fact]
    public async Task AWorkerADriverReportedLostComesBackOnlyByRegisteringAgain()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 12, 6, 0, 0, 0, TimeSpan.Zero));
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), new FakeTrainingDriver(), heartbeatTimeout: Timeout, clock: clock);
        await c.RegisterWorker("w0");
        await c.Grains.GetGrain<IWorkerPoolGrain>(0).ReportLost("w0", "scatter: worker 'w0' (rank 0) unreachable");
        clock.Advance(TimeSpan.FromSeconds(1));   // well inside the heartbeat timeout: only the report makes it dead

        var refused = await Assert.ThrowsAsync<RpcException>(() => Heartbeat(c, "w0"));
        Assert.Equal(StatusCode.NotFound, refused.StatusCode);
        Assert.Contains("scatter: worker 'w0' (rank 0) unreachable", refused.Status.Detail);
        Assert.False(Assert.Single((await Members(c)).Workers).Alive);

        await c.RegisterWorker("w0");
        await Heartbeat(c, "w0");
        Assert.True(Assert.Single((await Members(c)).Workers).Alive);
    }
}
