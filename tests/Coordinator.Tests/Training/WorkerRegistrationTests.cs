using Jetpack.Coordinator.Tests.Support;
using Jetpack.WorkerCluster;
using Jetpack.Protocol.Jobs;
using Jetpack.Protocol.Security;

namespace Jetpack.Coordinator.Tests.Training;

/// <summary>
/// `jetpack-worker --coordinator URL` joins the pool with its endpoint and keeps heartbeating; the
/// cluster token is required on both sides: a worker with another token is refused (and says so),
/// and the coordinator never lists it.
/// </summary>
[Collection(InProcessCoordinators.Name)]
public sealed class WorkerRegistrationTests
{
    [Fact]
    public async Task AWorkerRegistersWithItsEndpointAndHeartbeatsAndAWrongTokenIsRefused()
    {
        await using var cluster = new DriverCluster();
        await using var coordinator = await TestCoordinator.StartAsync(cluster.Dir.File("data"), heartbeatTimeout: TimeSpan.FromSeconds(5),
            configure: o => o.ClusterToken = cluster.Token.Value);
        var good = await cluster.Workers(coordinator.Grpc, 1, "good");
        await using var stranger = await WorkerLauncher.StartAsync(new LaunchOptions
        {
            WorldSize = 1, Coordinator = coordinator.Grpc, Token = ClusterToken.Generate(), WorkerIdPrefix = "stranger", ThreadsPerWorker = 1,
            HeartbeatInterval = TimeSpan.FromSeconds(1),
        });
        await DriverCluster.WaitAlive(coordinator.Workers, coordinator.Call, "good0");

        // alive across several heartbeat timeouts: the heartbeats keep coming
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(8))
        {
            var listed = (await coordinator.Workers.ListWorkersAsync(new ListWorkersRequest(), coordinator.Call)).Workers;
            var w = Assert.Single(listed);                                             // the stranger is never listed
            Assert.Equal(("good0", $"http://{good.Workers[0].Address}", true), (w.WorkerId, w.Endpoint, w.Alive));
            await Task.Delay(500);
        }
        await Await.Until(() => Task.FromResult(stranger.Workers[0].StandardError), e => e.Contains("Unauthenticated"), "the stranger to report its refusal");
        Assert.False(stranger.Workers[0].HasExited);                                   // it keeps trying (a token may be rotated), harmlessly
    }
}
