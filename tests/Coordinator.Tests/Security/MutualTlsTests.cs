using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Jetpack.Cli.CommandLine;
using Jetpack.Coordinator.Tests.Cli;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Protocol.Jobs;
using Jetpack.Protocol.Security;
using Jetpack.Tests.Security;

namespace Jetpack.Coordinator.Tests.Security;

/// <summary>
/// Issue 20, mTLS on the coordinator's planes: the job API (JobService and WorkerRegistry on one port) and
/// /metrics with --metrics-tls. A cluster certificate works; no certificate, another CA's and plaintext are
/// refused; the CLI says TLS and exits 7.
/// </summary>
public sealed class MutualTlsTests : IDisposable
{
    readonly TempDir dir = new();
    readonly TestCertificates certs = new();

    public void Dispose()
    {
        certs.Dispose();
        dir.Dispose();
    }

    Task<TestCoordinator> Start() => TestCoordinator.StartAsync(dir.File("data"), configure: o => { o.Tls = certs.Node; o.MetricsTls = true; o.ClusterToken = Token.Value; });

    static readonly ClusterToken Token = ClusterToken.Generate();

    static Task<ListJobsReply> List(GrpcChannel channel) =>
        new JobService.JobServiceClient(channel).ListAsync(new ListJobsRequest(), new Metadata { { ClusterToken.MetadataKey, Token.HeaderValue } }, DateTime.UtcNow.AddSeconds(20)).ResponseAsync;

    [Fact]
    public async Task TheJobApiServesOnlyClusterCertificates()
    {
        await using var c = await Start();
        Assert.Equal("https", c.Grpc.Scheme);
        Assert.Empty((await c.Jobs.ListAsync(new ListJobsRequest(), c.Call)).Jobs);          // the product's client with the node certificate
        await c.Workers.RegisterAsync(new RegisterWorkerRequest { WorkerId = "w", Endpoint = "https://127.0.0.1:1", Slots = 1 }, c.Call);

        foreach (var (what, client) in new[] { ("no client certificate", (X509Certificate2?)null), ("a certificate from another CA", certs.Intruder) })
        {
            using var channel = GrpcChannel.ForAddress(c.Grpc, new GrpcChannelOptions { HttpHandler = certs.Handler(client) });
            var e = await Assert.ThrowsAsync<RpcException>(() => List(channel));
            Assert.True(e.StatusCode is StatusCode.Unavailable or StatusCode.Internal, $"{what}: {e.Status}");
        }
        using var plaintext = GrpcChannel.ForAddress(new UriBuilder(c.Grpc) { Scheme = "http" }.Uri);
        var refused = await Assert.ThrowsAsync<RpcException>(() => List(plaintext));
        Assert.True(refused.StatusCode is StatusCode.Unavailable or StatusCode.Internal, $"plaintext: {refused.Status}");
        // the token stays a second factor: a cluster certificate without it is Unauthenticated
        var noToken = await Assert.ThrowsAsync<RpcException>(() => c.Jobs.ListAsync(new ListJobsRequest(), deadline: DateTime.UtcNow.AddSeconds(20)).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, noToken.StatusCode);
    }

    [Fact]
    public async Task MetricsTlsServesOnlyClusterCertificates()
    {
        await using var c = await Start();
        Assert.Equal("https", c.Metrics.Scheme);
        using (var good = new HttpClient(certs.Handler(certs.Node.Certificate)))
            Assert.Contains("# ", await good.GetStringAsync(c.Metrics));
        foreach (var client in new[] { null, certs.Intruder })
        {
            using var bad = new HttpClient(certs.Handler(client));
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => bad.GetStringAsync(c.Metrics));
        }
        using var plain = new HttpClient();
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => plain.GetStringAsync(new UriBuilder(c.Metrics) { Scheme = "http" }.Uri));
    }

    [Fact]
    public async Task AWorkerRegistersOverMutualTlsAndTheCoordinatorReachesItBack()
    {
        await using var c = await Start();
        // worker → coordinator: the worker's link presents its certificate and registers an https:// endpoint
        await using var node = await GpuWorker.WorkerHost.StartAsync(new GpuWorker.Hosting.WorkerOptions
        {
            Rank = 0, WorldSize = 1, Token = Token, Tls = certs.Node,
            Coordinator = new GpuWorker.Hosting.CoordinatorLinkOptions { Address = c.Grpc, WorkerId = "tls-worker", HeartbeatInterval = TimeSpan.FromSeconds(1) },
        });
        await using var link = GpuWorker.Hosting.CoordinatorLink.Start(node, node.Options.Coordinator!, Token);
        await link.Registered.WaitAsync(TimeSpan.FromSeconds(60));
        var worker = (await c.Workers.ListWorkersAsync(new ListWorkersRequest(), c.Call)).Workers.Single(w => w.WorkerId == "tls-worker");
        Assert.Equal($"https://127.0.0.1:{node.Port}", worker.Endpoint);
        // coordinator → worker: the driver's channel (WireChannels.Open with the coordinator's TLS) gets Health
        using var channel = Protocol.Channels.WireChannels.Open($"127.0.0.1:{node.Port}", Protocol.Codec.WireLimits.Default, c.Options.Tls);
        var health = await new Protocol.Wire.WorkerControl.WorkerControlClient(channel.Intercept(new ClusterTokenCallInterceptor(Token)))
                               .HealthAsync(new Protocol.Wire.HealthRequest(), deadline: DateTime.UtcNow.AddSeconds(20));
        Assert.Equal(Environment.ProcessId, health.ProcessId);
    }

    [Fact]
    public async Task TheCliSaysTlsAndExits7WhenItsCertificateIsForeign()
    {
        await using var c = await Start();
        File.WriteAllText(dir.File("token"), Token.Value);
        string intruder = certs.IntruderDir;
        var (code, output) = CliProcess.Jetpack("list", "--coordinator", c.Grpc.ToString(), "--token-file", dir.File("token"),
                                                "--tls-cert", Path.Combine(intruder, "tls.crt"), "--tls-key", Path.Combine(intruder, "tls.key"), "--tls-ca", Path.Combine(intruder, "ca.crt"));
        Assert.True(code == ExitCodes.Tls, $"exit {code}: {output}");
        Assert.Contains("TLS: the connection to the coordinator", output);
        (code, output) = CliProcess.Jetpack("list", "--coordinator", c.Grpc.ToString(), "--token-file", dir.File("token"),
                                            "--tls-cert", certs.CertFile, "--tls-key", certs.KeyFile, "--tls-ca", certs.CaFile);
        Assert.True(code == ExitCodes.Ok, $"exit {code}: {output}");
        // `workers` sends the token too (it built its client on the bare channel, and a coordinator with a token refused it)
        (code, output) = CliProcess.Jetpack("workers", "--coordinator", c.Grpc.ToString(), "--token-file", dir.File("token"),
                                            "--tls-cert", certs.CertFile, "--tls-key", certs.KeyFile, "--tls-ca", certs.CaFile);
        Assert.True(code == ExitCodes.Ok, $"exit {code}: {output}");
        Assert.Contains("0 worker(s), 0 alive", output);
    }
}
