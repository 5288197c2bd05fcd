using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Jetpack.Protocol.Channels;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Wire;
using Jetpack.Tests.Security;
using Jetpack.WorkerCluster;
using Xunit.Abstractions;

namespace Jetpack.Coordinator.Tests.MultiHost;

/// <summary>
/// Issue 20, mTLS across a real link: two workers in the rig's namespaces w0 and w1 (their own addresses on the bridge,
/// links shaped as the rig shapes them) exchange 8 MiB tensors over the TCP data plane under mutual TLS, in sealed records
/// (the default) and in SslStream's own records, every arrival checked against its source; a plaintext client in this
/// namespace is refused on the data plane and on worker control.
/// </summary>
[Collection(MultiHostRig.Name)]
[Trait("Category", "MultiHost")]
public sealed class TlsAcrossNamespacesTests(NetnsRig rig, ITestOutputHelper output)
{
    [RigFact]
    public async Task TwoWorkersInTheirOwnNamespacesExchangeOverMutualTlsInBothRecordLayersAndRefusePlaintext()
    {
        Assert.NotNull(rig);
        using var certs = new TestCertificates();
        (string, string)[] namespaces = [(NetnsRig.Ns("w0"), NetnsRig.Address("w0")), (NetnsRig.Ns("w1"), NetnsRig.Address("w1"))];
        foreach (string records in new[] { "sealed", "sslstream" })
        {
            await using var launcher = await WorkerLauncher.StartAsync(new LaunchOptions
            {
                WorldSize = 2, JobId = $"tls-{records}", ThreadsPerWorker = 1, DataPlane = DataPlaneTransport.Tcp, Namespaces = namespaces, Tls = certs.Node,
                Environment = new Dictionary<string, string> { [ClusterTls.TcpRecordsEnv] = records },
            });
            var clock = Stopwatch.StartNew();
            var replies = await Task.WhenAll(Enumerable.Range(0, 2).Select(r => launcher.Control(r).BenchExchangeAsync(
                new BenchExchangeRequest { BytesPerPeer = 8 << 20, Rounds = 5, Warmup = 1 }, deadline: DateTime.UtcNow.AddMinutes(3)).ResponseAsync));
            foreach (var x in replies) Assert.True(x.Verified, $"{records}: rank {x.Rank} received pieces that do not hold their sources' values");
            output.WriteLine($"{records} records, {namespaces[0].Item1} ↔ {namespaces[1].Item1}: {string.Join(", ", replies.Select(x => $"rank {x.Rank} {x.BytesSent / x.Seconds / 1e9:F2} GB/s"))} ({clock.Elapsed.TotalSeconds:F1} s)");
            if (records != "sealed") continue;

            // a plaintext client from this namespace: the TCP data plane closes before any reply, worker control refuses the call
            var health = await launcher.Control(0).HealthAsync(new HealthRequest(), deadline: DateTime.UtcNow.AddSeconds(20));
            var plain = Record.Exception(() => DataPlaneHello.Say(NetnsRig.Address("w0"), health.DataPort, launcher.Token, tls: null));
            Assert.True(plain is EndOfStreamException or IOException, $"plaintext data plane hello across the bridge: {plain?.ToString() ?? "accepted"}");
            using var cleartext = WireChannels.Open(launcher.Addresses[0], WireLimits.Default);
            var refused = await Assert.ThrowsAsync<RpcException>(() => new WorkerControl.WorkerControlClient(cleartext.Intercept(new ClusterTokenCallInterceptor(launcher.Token)))
                .HealthAsync(new HealthRequest(), deadline: DateTime.UtcNow.AddSeconds(20)).ResponseAsync);
            Assert.True(refused.StatusCode is StatusCode.Unavailable or StatusCode.Internal, $"plaintext worker control: {refused.Status}");
        }
    }
}
