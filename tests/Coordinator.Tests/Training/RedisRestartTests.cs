using Grpc.Core;
using Grpc.Net.Client;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Protocol.Jobs;
using Xunit.Abstractions;

namespace Jetpack.Coordinator.Tests.Training;

/// <summary>
/// Issue 20, fault 6: "Redis restarts mid-job. Nothing is lost." A real `jetpack coordinator` process with Redis
/// clustering and grain storage on a real redis-server run as deploy/k8s runs it (append-only file), two real
/// workers, a deterministic 30-step job. At step 27 redis-server is SIGKILLed; it stays down until the job has ended
/// (so the job's last phase change is written while Redis is away), then starts again on the same port and
/// directory. The job must complete without a recovery, metrics.jsonl must hold every step with the single-process
/// losses, and the state in Redis must be whole: a fresh coordinator on the same Redis reads the job back as it ended.
/// </summary>
[Trait("Category", "Timing")]
public sealed class RedisRestartTests(ITestOutputHelper output)
{
    const int Steps = 30;
    const int KillAtStep = 27;

    [Fact]
    public async Task RedisRestartedMidJobLosesNoStepAndNoState()
    {
        await using var cluster = new DriverCluster();
        using var redis = new RedisServer(persistent: true);
        using var rc = new RedisCoordinator(cluster, redis, "redis-restart");
        var (data, address, jobs, registry) = (rc.Data, rc.Address, rc.Jobs, rc.Registry);
        CallOptions Call() => rc.Call();
        Task<JobStatus> Status() => jobs.GetStatusAsync(new JobRequest { JobId = "redis-restart" }, Call()).ResponseAsync;

        string yaml = cluster.Spec("redis-restart", workers: 2, Steps, checkpointEvery: 4);
        JobStatus done;
        using (var coordinator = rc.Start())
        {
            await cluster.Workers(address, 2, "w");
            await DriverCluster.WaitAlive(registry, Call(), "w0", "w1");
            await jobs.SubmitAsync(new SubmitJobRequest { SpecText = yaml, Format = "yaml", Source = "redis-restart.yaml" }, Call());
            var before = await Await.Until(Status, s => s.Phase == JobPhase.Training && s.Step >= KillAtStep || s.Phase is JobPhase.Completed or JobPhase.Failed,
                                           $"job redis-restart to pass step {KillAtStep}", TimeSpan.FromMinutes(5));
            Assert.True(before.Phase == JobPhase.Training, $"before the Redis restart: {before.Phase}: {before.Message}");
            Assert.Contains(redis.Keys(), k => k.Contains("redis-restart", StringComparison.Ordinal));

            redis.Kill();
            var down = System.Diagnostics.Stopwatch.StartNew();
            done = await Await.Until(Status, s => s.Phase is JobPhase.Completed or JobPhase.Failed, "job redis-restart to end while Redis is down", TimeSpan.FromMinutes(5));
            redis.StartAgain();
            output.WriteLine($"Redis killed at step {before.Step}; the job ended ({done.Phase}: {done.Message}; recoveries {done.Recoveries}) " +
                             $"while it was down; started again after {down.Elapsed.TotalSeconds:F1} s");
            Assert.True(done.Phase == JobPhase.Completed, $"{done.Phase}: {done.Message}\n{coordinator.Output}");
            Assert.True(done.Recoveries == 0, $"a Redis restart should cost no recovery: {done.Recoveries} ({done.Message})\n{coordinator.Output}");
            // The coordinator writes what it could not (JobGrain.Persist): wait for that before it goes.
            if (coordinator.Output.Contains("state not persisted"))
                await Await.Until(() => Task.FromResult(coordinator.Output), o => o.Contains("job redis-restart: state persisted again"),
                                  "the coordinator to write job redis-restart's state once Redis is back", TimeSpan.FromMinutes(1));
            output.WriteLine(string.Join("\n", coordinator.Output.Split('\n').Where(l => l.Contains("persisted")).Select(l => l.Trim())));
        }

        string outDir = Path.Combine(data, "jobs", "redis-restart");
        Assert.Single(DriverCluster.Attempts(outDir));
        DriverCluster.AssertSameLosses(DriverCluster.SingleProcess(yaml, done.CheckpointPath), DriverCluster.Losses(outDir), "across a Redis restart");

        // The state in Redis is whole: a new coordinator (same cluster id, same Redis) reads the job back as it ended. It takes
        // the killed one's silo port: Orleans then retires the old membership entry at once instead of probing it first.
        using (var fresh = rc.Start())
        {
            var read = await Await.Until(async () =>
            {
                try { return await Status(); }
                catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded) { return new JobStatus { Message = e.Status.Detail }; }
            }, s => s.Phase != JobPhase.Unspecified, "a fresh coordinator to read job redis-restart from Redis", TimeSpan.FromMinutes(2));
            Assert.True((read.Phase, read.Step, read.Version, read.CheckpointKey) == (JobPhase.Completed, (long)Steps, done.Version, done.CheckpointKey),
                        $"read back {read.Phase} step {read.Step} version {read.Version}, ended {done.Phase} step {done.Step} version {done.Version}\n{fresh.Output}");
        }
    }
}
