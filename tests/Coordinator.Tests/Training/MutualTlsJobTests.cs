using Jetpack.Coordinator.Tests.Support;
using Jetpack.Protocol.Jobs;
using Jetpack.Tests.Security;
using Xunit.Abstractions;

namespace Jetpack.Coordinator.Tests.Training;

/// <summary>
/// Issue 20, a whole job under mutual TLS: the coordinator and two jetpack-worker processes all hold certificates from one
/// CA, so registration, heartbeats, the scatter of recycled weights, control calls, the TCP data plane (sealed records)
/// and the checkpoint gather all run over mTLS; the job completes with the single-process losses, as in cleartext.
/// </summary>
[Collection(InProcessCoordinators.Name)]
public sealed class MutualTlsJobTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AJobTrainsOverMutualTlsOnEveryPlaneWithTheSingleProcessLosses()
    {
        using var certs = new TestCertificates();
        await using var cluster = new DriverCluster();
        await using var coordinator = await cluster.Coordinator(certs.Node);
        Assert.Equal("https", coordinator.Grpc.Scheme);
        await cluster.Workers(coordinator.Grpc, 2, "tls", tls: certs.Node);
        await DriverCluster.WaitAlive(coordinator.Workers, coordinator.Call, "tls0", "tls1");
        string yaml = cluster.Spec("mtls", workers: 2, steps: 6, checkpointEvery: 3);
        await coordinator.Submit(yaml);
        var done = await Await.Until(() => coordinator.Status("mtls"), s => s.Phase is JobPhase.Completed or JobPhase.Failed, "job mtls to end", TimeSpan.FromMinutes(5));
        Assert.True(done.Phase == JobPhase.Completed, $"{done.Phase}: {done.Message}");
        Assert.Equal((6L, 0), (done.Step, done.Recoveries));
        var losses = DriverCluster.Losses(Path.Combine(coordinator.Options.JobsDirectory, "mtls"));
        output.WriteLine($"over mTLS: {string.Join(", ", losses.Select(l => l.Loss.ToString("F6")))}");
        DriverCluster.AssertSameLosses(DriverCluster.SingleProcess(yaml, done.CheckpointPath), losses, "coordinator + 2 workers over mTLS");
    }
}
