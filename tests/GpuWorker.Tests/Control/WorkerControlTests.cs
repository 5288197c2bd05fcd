using Grpc.Core;
using Grpc.Core.Interceptors;
using Jetpack.GpuWorker.DataPlane;
using Jetpack.GpuWorker.Tests.DataPlane;
using Jetpack.GpuWorker.Tests.Jobs;
using Jetpack.Model.Checkpoints;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Wire;
using Jetpack.Protocol.Channels;

namespace Jetpack.GpuWorker.Tests.Control;

/// <summary>Worker control against two real worker servers in this process: a collective checkpoint and a stop at a given step.</summary>
public class WorkerControlTests
{
    static WorkerControl.WorkerControlClient Client(LoopbackCluster c, int rank) =>
        new(WireChannels.Open(c.Nodes[rank].Address, WireLimits.Default).Intercept(new ClusterTokenCallInterceptor(c.Token)));

    [Fact]
    public async Task CheckpointNowAndStopJobActAfterTheRequestedStepOnEveryRank()
    {
        await using var c = await LoopbackCluster.StartAsync(2);
        var dir = Directory.CreateTempSubdirectory("jetpack-control-").FullName;
        try
        {
            var spec = ProcessTrainingTests.Spec with { Recipe = ProcessTrainingTests.Spec.Recipe with { Steps = 10_000 } };
            var clients = new[] { Client(c, 0), Client(c, 1) };
            var starts = await Task.WhenAll(clients.Select(k => k.StartJobAsync(new StartJobRequest { JobId = LoopbackCluster.Job, SpecJson = spec.ToJson() }).ResponseAsync));
            Assert.All(starts, s => Assert.Equal(0, s.StartStep));
            var again = await Assert.ThrowsAsync<RpcException>(() => clients[0].StartJobAsync(new StartJobRequest { JobId = LoopbackCluster.Job, SpecJson = spec.ToJson() }).ResponseAsync);
            Assert.Equal(StatusCode.FailedPrecondition, again.StatusCode);

            var ckpt = Path.Combine(dir, "at-30");
            var saved = await Task.WhenAll(clients.Select(k => k.CheckpointNowAsync(new CheckpointRequest { JobId = LoopbackCluster.Job, Directory = ckpt, AfterStep = 30 }).ResponseAsync))
                                  .WaitAsync(TimeSpan.FromMinutes(2));
            Assert.All(saved, s => Assert.Equal(30, s.Step));
            var manifest = TrainingCheckpoint.ReadManifest(ckpt);
            Assert.Equal((2, 30L), (manifest.WorldSize, manifest.Step));
            var late = await Assert.ThrowsAsync<RpcException>(() => clients[0].CheckpointNowAsync(new CheckpointRequest { JobId = LoopbackCluster.Job, Directory = ckpt, AfterStep = 1 }).ResponseAsync);
            Assert.Equal(StatusCode.FailedPrecondition, late.StatusCode);

            var stops = await Task.WhenAll(clients.Select(k => k.StopJobAsync(new StopJobRequest { JobId = LoopbackCluster.Job, AfterStep = 35 }).ResponseAsync));
            Assert.All(stops, s => Assert.Equal(35, s.StoppedAtStep));
            foreach (var k in clients)
            {
                using var watch = k.WatchProgress(new ProgressRequest { JobId = LoopbackCluster.Job });
                var all = new List<Progress>();
                while (await watch.ResponseStream.MoveNext(new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token)) all.Add(watch.ResponseStream.Current);
                Assert.Equal((RunEnd.Stopped, "stopped after step 35"), (all[^1].End, all[^1].EndReason));
                Assert.Equal(Enumerable.Range(1, 35).Select(i => (long)i), all.SkipLast(1).Select(p => p.Step));
            }
            var unknown = await Assert.ThrowsAsync<RpcException>(() => clients[0].StopJobAsync(new StopJobRequest { JobId = "other" }).ResponseAsync);
            Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
