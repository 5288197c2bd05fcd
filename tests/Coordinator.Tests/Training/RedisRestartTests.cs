using Grpc.Core;
using Grpc.Net.Client;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Protocol.Jobs;
using Xunit.Abstractions;

namespace Jetpack.Coordinator.Tests.Training;

/// <summary>
/// Issue 20, fault 6: "Redis restarts mid-job. Nothing is lost." A real `jetpack coordinator` process with Redis
/// clustering and grain storage on a real redis-server run as deploy/k8s runs it (append-only file), two real
/// workers, a deterministic job; at step 6 redis-server is SIGKILLed, kept down for 5 s and started again on the same
/// port and directory. The job must complete without a recovery, metrics.jsonl must hold every step with the
/// single-process losses, and the state in Redis must be whole: a fresh coordinator on the same Redis reads the
/// job back as it ended.
/// </summary>
[Trait("Category", "Timing")]
public sealed class RedisRestartTests(ITestOutputHelper output)
{
    const int Steps = 30;
    static readonly TimeSpan Down = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task RedisRestartedMidJobLosesNoStepAndNoState()
    {
        await using var cluster = new DriverCluster();
        using var redis = new RedisServer(persistent: true);
        string tokenFile = cluster.Dir.File("cluster.token");
        File.WriteAllText(tokenFile, cluster.Token.Value);
        int port = FreePort.Next(), siloPort = FreePort.Next();
        string data = cluster.Dir.File("data");
        string[] args = ["--clustering", "redis", "--redis", redis.Configuration, "--cluster-id", "redis-restart", "--token-file", tokenFile,
                         "--heartbeat-timeout", "10", "--acquire-timeout", "90"];
        var address = new Uri($"http://127.0.0.1:{port}");
        using var channel = GrpcChannel.ForAddress(address);
        var jobs = new JobService.JobServiceClient(channel);
        var registry = new WorkerRegistry.WorkerRegistryClient(channel);
        var headers = new Metadata { { "authorization", "Bearer " + cluster.Token.Value } };
        CallOptions Call() => new(headers, DateTime.UtcNow.AddSeconds(30));
        Task<JobStatus> Status() => jobs.GetStatusAsync(new JobRequest { JobId = "redis-restart" }, Call()).ResponseAsync;

        string yaml = cluster.Spec("redis-restart", workers: 2, Steps, checkpointEvery: 4);
        JobStatus done;
        using (var coordinator = new CoordinatorProcess(data, port, siloPort, args))
        {
            await cluster.Workers(address, 2, "w");
            await DriverCluster.WaitAlive(registry, Call(), "w0", "w1");
            await jobs.SubmitAsync(new SubmitJobRequest { SpecText = yaml, Format = "yaml", Source = "redis-restart.yaml" }, Call());
            var before = await Await.Until(Status, s => s.Phase == JobPhase.Training && s.Step >= 6 || s.Phase is JobPhase.Completed or JobPhase.Failed,
                                           "job redis-restart to pass step 6", TimeSpan.FromMinutes(5));
            Assert.True(before.Phase == JobPhase.Training, $"before the Redis restart: {before.Phase}: {before.Message}");
            Assert.Contains(redis.Keys(), k => k.Contains("redis-restart", StringComparison.Ordinal));

            redis.Restart(Down);
            var after = await Status();
            output.WriteLine($"Redis killed at step {before.Step}, down {Down.TotalSeconds:F0} s, back at step {after.Step} ({after.Phase}: {after.Message})");

            done = await Await.Until(Status, s => s.Phase is JobPhase.Completed or JobPhase.Failed, "job redis-restart to end after the Redis restart", TimeSpan.FromMinutes(6));
            output.WriteLine($"{done.Phase}: {done.Message}; recoveries {done.Recoveries}");
            Assert.True(done.Phase == JobPhase.Completed, $"{done.Phase}: {done.Message}\n{coordinator.Output}");
            Assert.True(done.Recoveries == 0, $"a Redis restart should cost no recovery: {done.Recoveries} ({done.Message})\n{coordinator.Output}");
        }

        string outDir = Path.Combine(data, "jobs", "redis-restart");
        Assert.Single(DriverCluster.Attempts(outDir));
        DriverCluster.AssertSameLosses(DriverCluster.SingleProcess(yaml, done.CheckpointPath), DriverCluster.Losses(outDir), "across a Redis restart");

        // The state in Redis is whole: a new coordinator (same cluster id, same Redis) reads the job back as it ended.
        using (var fresh = new CoordinatorProcess(data, port, FreePort.Next(), args))
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
