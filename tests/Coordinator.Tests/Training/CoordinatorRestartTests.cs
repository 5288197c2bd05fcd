using Grpc.Core;
using Grpc.Net.Client;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Coordinator.Training;
using Jetpack.Protocol.Jobs;
using Xunit.Abstractions;

namespace Jetpack.Coordinator.Tests.Training;

/// <summary>
/// Issue 6, recovery test 2: the coordinator (a real `jetpack coordinator` process, Redis
/// clustering and grain storage on a real redis-server) is killed mid-job and started again on the
/// same address; the job's state survives in Redis, the workers re-announce themselves, the job
/// resumes from its last checkpoint and completes with the uninterrupted run's losses. (The workers
/// keep training while the coordinator is away; the restarted one replays those steps into
/// metrics.jsonl from the workers and takes the newest checkpoint.)
/// </summary>
public sealed class CoordinatorRestartTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ACoordinatorKilledMidJobIsRestartedAndTheJobCompletesFromRedis()
    {
        await using var cluster = new DriverCluster();
        using var redis = new RedisServer();
        using var rc = new RedisCoordinator(cluster, redis, "restart-test");
        var (data, address, jobs, registry) = (rc.Data, rc.Address, rc.Jobs, rc.Registry);
        CallOptions Call() => rc.Call();
        async Task<JobStatus> Status()
        {
            try { return await jobs.GetStatusAsync(new JobRequest { JobId = "restart" }, Call()); }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded) { return new JobStatus { Message = "coordinator unreachable" }; }
        }

        string yaml = cluster.Spec("restart", workers: 2, steps: 30, checkpointEvery: 4);
        var first = rc.Start();
        try
        {
            await cluster.Workers(address, 2, "w");
            await DriverCluster.WaitAlive(registry, Call(), "w0", "w1");
            await jobs.SubmitAsync(new SubmitJobRequest { SpecText = yaml, Format = "yaml", Source = "restart.yaml" }, Call());
            var mid = await Await.Until(Status, s => s.Phase == JobPhase.Training && s.Step >= 6 || s.Phase is JobPhase.Completed or JobPhase.Failed,
                                        "job restart to pass step 6", TimeSpan.FromMinutes(5));
            Assert.Equal(JobPhase.Training, mid.Phase);
        }
        finally { first.Dispose(); }                                                   // SIGKILL, mid-training

        using var second = rc.Start();
        var done = await Await.Until(Status, s => s.Phase is JobPhase.Completed or JobPhase.Failed, "job restart to end after the restart", TimeSpan.FromMinutes(5));
        output.WriteLine($"{done.Phase}: {done.Message}; recoveries {done.Recoveries}");
        Assert.True(done.Phase == JobPhase.Completed, $"{done.Phase}: {done.Message}\n{second.Output}");
        Assert.True(done.Recoveries >= 1, "the restarted coordinator should have recovered the job");

        string outDir = Path.Combine(data, "jobs", "restart");
        var attempts = DriverCluster.Attempts(outDir);
        Assert.True(attempts.Count >= 2, $"{attempts.Count} attempts");            // the restarted coordinator scattered again, from the checkpoint
        long resumed = attempts[^1].GetProperty("resumed_step").GetInt64();
        Assert.True(resumed >= 4, $"resumed at step {resumed}");
        var manifest = CheckpointLocator.Verified(Path.Combine(outDir, "checkpoint"));
        Assert.NotNull(manifest);
        Assert.Equal(30L, manifest.Step);
        // The workers train on while no coordinator watches; the new coordinator replays those steps from
        // them before it resumes from the newest checkpoint (issue 20, fault 5): every step is logged, once.
        var losses = DriverCluster.Losses(outDir);
        output.WriteLine($"logged steps: {string.Join(", ", losses.Select(l => l.Step))}");
        foreach (var line in second.Output.Split('\n').Where(l => l.Contains("replayed") || l.Contains("missing from") || l.Contains("resuming")))
            output.WriteLine("restarted coordinator: " + line.Trim());
        DriverCluster.AssertSameLosses(DriverCluster.SingleProcess(yaml, done.CheckpointPath), losses, "across a coordinator restart");
    }
}
