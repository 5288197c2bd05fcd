using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Protocol.Jobs;

namespace Jetpack.Coordinator.Tests.Hosting;

/// <summary>
/// Job state survives a coordinator restart: in files under the data directory (localhost
/// clustering) and in a real redis-server (Redis clustering + grain storage).
/// </summary>
[Collection(InProcessCoordinators.Name)]
public sealed class PersistenceTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public async Task FileStorageKeepsJobsAndRecycledCheckpointsAcrossARestart() =>
        await RestartKeepsState(_ => { });

    [Fact]
    public async Task RedisClusteringAndStorageKeepJobsAcrossARestart()
    {
        using var redis = new RedisServer();
        await RestartKeepsState(o => (o.Clustering, o.Redis) = (ClusteringMode.Redis, redis.Configuration));

        // The state really is in Redis (not in the data directory): grain state and the membership table.
        Assert.False(Directory.Exists(Path.Combine(dir.File("data"), "grains")));
        var keys = redis.Keys();
        Assert.Contains(keys, k => k.Contains("done-job", StringComparison.Ordinal));
        Assert.True(keys.Count >= 3, $"keys in redis: {string.Join(", ", keys)}");
    }

    async Task RestartKeepsState(Action<CoordinatorOptions> configure)
    {
        string data = dir.File("data");
        string pred = JobSpecs.Checkpoint(dir, "p.safetensors", "p");
        string clusterId = "restart-" + Guid.NewGuid().ToString("N")[..8];
        void Configure(CoordinatorOptions o) { o.ClusterId = clusterId; configure(o); }
        JobStatus done;
        var first = new FakeRecycler(dir.Path);
        await using (var c = await TestCoordinator.StartAsync(data, first, new FakeTrainingDriver(), configure: Configure))
        {
            await c.RegisterWorker("w0");
            await c.Submit(JobSpecs.Yaml("done-job", pred));
            done = await c.WaitForPhase("done-job", JobPhase.Completed);
            // A job left mid-recycling when the coordinator stops.
            first.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await c.Submit(JobSpecs.Yaml("mid-job", pred, seed: 99));
            await Await.Until(() => Task.FromResult(first.Calls), n => n == 2, "the second recycling to start");
        }

        // Held until a worker is registered: the resumed job must not reach Scattering before.
        var second = new FakeRecycler(dir.Path) { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        await using (var c = await TestCoordinator.StartAsync(data, second, new FakeTrainingDriver(), configure: Configure))
        {
            var after = await c.Status("done-job");
            Assert.Equal((JobPhase.Completed, done.Version, done.CheckpointKey, 5L), (after.Phase, after.Version, after.CheckpointKey, after.Step));
            Assert.Equal(["done-job", "mid-job"], (await c.Jobs.ListAsync(new ListJobsRequest(), c.Call)).Jobs.Select(j => j.JobId));

            // The interrupted job resumes its recycling on start; it needs a worker to finish.
            await c.RegisterWorker("w0");
            second.Gate.SetResult();
            var resumed = await c.WaitForPhase("mid-job", JobPhase.Completed);
            Assert.Equal(1, second.Calls);

            // The persisted recycled checkpoint is reused, not recycled again.
            await c.Submit(JobSpecs.Yaml("again-job", pred));
            var again = await c.WaitForPhase("again-job", JobPhase.Completed);
            Assert.True(again.CheckpointReused);
            Assert.Equal(done.CheckpointKey, again.CheckpointKey);
            Assert.Equal(1, second.Calls);
            Assert.Equal(1, await c.Grains.GetGrain<IRecycledCheckpointGrain>(done.CheckpointKey).GetRuns());
            Assert.NotEqual(done.CheckpointKey, resumed.CheckpointKey);
        }
    }
}
