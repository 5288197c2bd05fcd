using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Jetpack.GpuWorker.DataPlane;
using Jetpack.GpuWorker.Tests.DataPlane;
using Jetpack.Protocol.Channels;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Wire;
using Jetpack.Tests.Security;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.Tests.Security;

/// <summary>
/// Issue 20, mTLS on the worker's planes: worker control and the gRPC data plane (one Kestrel port) and
/// the TCP data plane (SslStream). On each: a cluster certificate works; no certificate, a certificate
/// from another CA and a plaintext client are refused.
/// </summary>
public sealed class MutualTlsTests : IDisposable
{
    readonly TestCertificates certs = new();

    public void Dispose() => certs.Dispose();

    [Theory]
    [InlineData(DataPlaneTransport.Grpc, true)]
    [InlineData(DataPlaneTransport.Tcp, true)]
    [InlineData(DataPlaneTransport.Tcp, false)]
    [InlineData(DataPlaneTransport.GrpcPull, true)]
    public async Task TheRingAllReduceRunsOverMutualTls(DataPlaneTransport transport, bool sealedTcpRecords)
    {
        // the TCP plane's two record layers (sealed records, the default, or SslStream's own): the sender chooses
        using var tls = ClusterTls.Load(certs.CertFile, certs.KeyFile, certs.CaFile);
        tls.SealedTcpRecords = sealedTcpRecords;
        await using var cluster = await LoopbackCluster.StartAsync(2, transport: transport, tls: tls);
        var sums = LoopbackCluster.PerRank(2, r =>
        {
            var g = new List<Tensor> { full(new long[] { 1000 }, r + 1f) };                // [1000]
            cluster.Nodes[r].Reducer.AllReduceSum(step: 1, g);
            return g[0];
        }, TimeSpan.FromSeconds(60));
        foreach (var s in sums) Assert.True(s.eq(3f).all().item<bool>(), "not the sum of both ranks");
    }

    Task<HealthReply> Health(GrpcChannel channel, ClusterToken token) =>
        new WorkerControl.WorkerControlClient(channel.Intercept(new ClusterTokenCallInterceptor(token))).HealthAsync(new HealthRequest(), deadline: DateTime.UtcNow.AddSeconds(20)).ResponseAsync;

    [Fact]
    public async Task WorkerControlAndTheGrpcDataPlaneServeOnlyClusterCertificates()
    {
        await using var cluster = await LoopbackCluster.StartAsync(1, tls: certs.Node);
        var node = cluster.Nodes[0];

        using (var good = WireChannels.Open(node.Address, WireLimits.Default, certs.Node))
            Assert.Equal(Environment.ProcessId, (await Health(good, cluster.Token)).ProcessId);

        foreach (var (what, client) in new[] { ("no client certificate", (X509Certificate2?)null), ("a certificate from another CA", certs.Intruder) })
        {
            using var channel = GrpcChannel.ForAddress($"https://{node.Address}", new GrpcChannelOptions { HttpHandler = certs.Handler(client) });
            var e = await Assert.ThrowsAsync<RpcException>(() => Health(channel, cluster.Token));
            Assert.True(e.StatusCode is StatusCode.Unavailable or StatusCode.Internal, $"{what}: {e.Status}");
        }

        using var plaintext = WireChannels.Open(node.Address, WireLimits.Default);            // h2c to a TLS port
        var refused = await Assert.ThrowsAsync<RpcException>(() => Health(plaintext, cluster.Token));
        Assert.True(refused.StatusCode is StatusCode.Unavailable or StatusCode.Internal, $"plaintext: {refused.Status}");
    }

    static StatusCode Hello(int port, ClusterToken token, SslClientAuthenticationOptions? tls, byte version = 1) =>
        DataPlaneHello.Say("127.0.0.1", port, token, tls, version);

    [Fact]
    public async Task TheTcpDataPlaneServesOnlyClusterCertificates()
    {
        await using var cluster = await LoopbackCluster.StartAsync(1, transport: DataPlaneTransport.Tcp, tls: certs.Node);
        int port = cluster.Nodes[0].DataPort;

        Assert.Equal(StatusCode.OK, Hello(port, cluster.Token, certs.Node.ClientOptions("127.0.0.1")));
        // TLS 1.3 finishes the client's side of the handshake before the server checks its certificate: the
        // refusal arrives as an alert or a closed connection at the first read.
        foreach (var (what, client) in new[] { ("no client certificate", (X509Certificate2?)null), ("a certificate from another CA", certs.Intruder) })
        {
            var e = Record.Exception(() => Hello(port, cluster.Token, certs.Client(client)));
            Assert.True(e is IOException or System.Security.Authentication.AuthenticationException, $"{what}: {e?.ToString() ?? "accepted"}");
        }
        var plain = Record.Exception(() => Hello(port, cluster.Token, tls: null));        // closed before TLS: no reply at all
        Assert.True(plain is EndOfStreamException or IOException, $"plaintext: {plain?.ToString() ?? "accepted"}");
    }

    [Fact]
    public async Task APeerWithAnotherCasCertificateCannotSendTensors()
    {
        await using var cluster = await LoopbackCluster.StartAsync(1, transport: DataPlaneTransport.Tcp, tls: certs.Node);
        // The product's sender, configured with a foreign CA's node: its handshake fails naming TLS.
        CertificateAuthority.Issue(certs.ForeignCaDir, "rogue", [IPAddress.Loopback], [], Path.Combine(certs.Directory, "rogue")).Dispose();
        string rogue = Path.Combine(certs.Directory, "rogue");
        using var foreign = ClusterTls.Load(Path.Combine(rogue, CertificateAuthority.NodeCert), Path.Combine(rogue, CertificateAuthority.NodeKey), Path.Combine(rogue, CertificateAuthority.CaCert));
        using var link = new TcpPeerLink(0, "127.0.0.1", _ => Task.FromResult(cluster.Nodes[0].DataPort), cluster.Token, foreign);
        using var t = zeros(4);
        var e = await Assert.ThrowsAsync<System.Security.Authentication.AuthenticationException>(() =>
            link.PushAsync(MailKey.Exchange(LoopbackCluster.Job, new Model.Distributed.ExchangeTag(1, 0, 0, Model.Distributed.ExchangePhase.Dispatch), 0), t, DateTime.UtcNow.AddSeconds(20), CancellationToken.None));
        Assert.StartsWith("TLS: the TCP data plane handshake with rank 0", e.Message);
    }

    [Fact]
    public async Task APlaintextTcpDataPlaneRefusesSealedRecordsNamingWhy()
    {
        await using var cluster = await LoopbackCluster.StartAsync(1, transport: DataPlaneTransport.Tcp);
        Assert.Equal(StatusCode.OK, Hello(cluster.Nodes[0].DataPort, cluster.Token, tls: null));
        Assert.Equal(StatusCode.InvalidArgument, Hello(cluster.Nodes[0].DataPort, cluster.Token, tls: null, version: 2));
    }
}
