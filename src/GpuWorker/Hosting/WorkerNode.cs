using System.Net;
using Jetpack.GpuWorker.DataPlane;
using Jetpack.Protocol.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Jetpack.GpuWorker.Telemetry;
using Jetpack.Protocol.Telemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Jetpack.Protocol.Channels;

namespace Jetpack.GpuWorker.Hosting;

/// <summary>
/// One rank, hosted: Kestrel serving gRPC over h2c on loopback (the data plane and worker control,
/// both behind the cluster token), its membership and mailbox, and — once the peers are known —
/// the gRPC exchange and ring reducer that the trainer's distributed mode uses.
/// </summary>
public sealed class WorkerNode : IAsyncDisposable
{
    private WebApplication app = null!;
    private PeerChannels? channels;
    private TcpDataPlaneServer? tcp;

    private WorkerNode(WorkerOptions options, JobMembership membership, PeerMailbox mailbox)
    {
        Options = options; Membership = membership; Mailbox = mailbox;
        Metrics = new WorkerMetrics(() => membership.Rank);     // the rank of the current run (a coordinator's worker changes it)
    }

    public WorkerOptions Options { get; }
    public JobMembership Membership { get; }
    public PeerMailbox Mailbox { get; }
    public int Port { get; private set; }
    public string Address => $"127.0.0.1:{Port}";
    /// <summary>The HTTP/1.1 port serving <c>/metrics</c> (Prometheus text format).</summary>
    public int MetricsPort { get; private set; }
    public string MetricsAddress => $"127.0.0.1:{MetricsPort}";
    /// <summary>The port of the raw TCP data plane (<see cref="DataPlaneTransport.Tcp"/>) on the listen address; peers learn it from Health.</summary>
    public int DataPort => tcp?.Port ?? 0;
    /// <summary>This rank's instruments (DESIGN.md "Telemetry").</summary>
    public WorkerMetrics Metrics { get; }
    public GrpcExpertExchange Exchange => exchange ?? throw new InvalidOperationException($"rank {Options.Rank}: peers not connected yet");
    public GrpcRingReducer Reducer => reducer ?? throw new InvalidOperationException($"rank {Options.Rank}: peers not connected yet");
    /// <summary>Ranks of the joined run the data plane's liveness check finds silent now (<see cref="PeerLiveness"/>).</summary>
    public IReadOnlyList<int> UnreachablePeers => channels?.Liveness?.Unreachable ?? [];

    /// <summary>
    /// The data plane of a job with layout <paramref name="layout"/> (world = G × R): the all-to-all
    /// over this rank's expert group and the ring over the R holders of its experts (null when R = 1).
    /// With G = world they are <see cref="Exchange"/> and no second ring. Made per job, over the
    /// current peer channels; the world ring stays <see cref="Reducer"/>.
    /// </summary>
    public (GrpcExpertExchange Exchange, GrpcRingReducer? ExpertReducer) ForLayout(Model.Distributed.ParallelLayout layout)
    {
        if (layout.WorldSize != Membership.WorldSize)
            throw new ArgumentException($"rank {Membership.Rank}: a layout of {layout.WorldSize} ranks for a world of {Membership.WorldSize}");
        if (layout.Replicas == 1) return (Exchange, null);
        var peers = channels ?? throw new InvalidOperationException($"rank {Options.Rank}: peers not connected yet");
        int rank = Membership.Rank;
        return (new GrpcExpertExchange(Mailbox, peers, Options.Exchange, abort.Token, Metrics, layout.Group(rank)),
                new GrpcRingReducer(Mailbox, peers, Options.Exchange, abort.Token, Metrics, layout.Holders(rank)));
    }

    /// <summary>Fires when the host begins to stop (a signal, or <see cref="StopAsync"/>).</summary>
    public CancellationToken Stopping => app.Lifetime.ApplicationStopping;

    private GrpcExpertExchange? exchange;
    private GrpcRingReducer? reducer;
    private CancellationTokenSource abort = new();
    private readonly SemaphoreSlim joinGate = new(1, 1);
    private long benchStep;

    /// <summary>The job this worker runs or last ran (one at a time).</summary>
    public IWorkerJob? CurrentJob { get; set; }

    private Dictionary<string, TorchSharp.torch.Tensor>? loadedShard;

    /// <summary>This rank's parameters as LoadShard delivered them (replicated + its experts), for a job that starts from them.</summary>
    public IReadOnlyDictionary<string, TorchSharp.torch.Tensor>? LoadedShard => loadedShard;

    internal void SetLoadedShard(Dictionary<string, TorchSharp.torch.Tensor> tensors)
    {
        var old = Interlocked.Exchange(ref loadedShard, tensors);
        if (old is not null) foreach (var t in old.Values) t.Dispose();
    }

    /// <summary>Next step number of a benchmark exchange (every rank counts the same calls).</summary>
    internal long NextBenchStep() => Interlocked.Increment(ref benchStep);

    /// <summary>
    /// Starts serving: the data plane, /metrics and the probes here, and the services
    /// <paramref name="mapServices"/> maps (the worker control service: <see cref="WorkerHost"/>
    /// composes the two, so that Hosting does not import Control, which drives this node).
    /// </summary>
    public static async Task<WorkerNode> StartAsync(WorkerOptions options, Action<WebApplication> mapServices)
    {
        options.Validate();
        var membership = new JobMembership(options.Rank, options.WorldSize, options.JobId);
        var mailbox = new PeerMailbox(membership, options.Limits, options.Exchange.Deadline, options.Placement);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders().AddSimpleConsole(c => c.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("Grpc", LogLevel.Critical);      // refusals are answered to the caller, not logged as server errors
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Error);
        builder.Logging.AddFilter("Jetpack.Tls", LogLevel.Warning);         // refused peers: named, one line each
        builder.WebHost.ConfigureKestrel(k =>
        {
            var tlsLog = k.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("Jetpack.Tls");
            k.Listen(IPAddress.Parse(options.ListenAddress), options.ListenPort, l =>
            {
                l.Protocols = HttpProtocols.Http2;                                  // h2c, or HTTP/2 over mutual TLS
                if (options.Tls is { } tls) l.UseClusterTls(tls, tlsLog, $"rank {options.Rank} worker control and gRPC data plane");
            });
            k.Listen(IPAddress.Parse(options.ListenAddress), options.MetricsPort, l =>
            {
                l.Protocols = HttpProtocols.Http1;                                  // /metrics for Prometheus
                if (options.MetricsTls) l.UseClusterTls(options.Tls!, tlsLog, $"rank {options.Rank} metrics endpoint");
            });
            WireChannels.ConfigureServer(k.Limits);
            k.Limits.MaxRequestBufferSize = null;
        });
        builder.Services.AddSingleton(options.Token);
        builder.Services.AddSingleton(membership);
        builder.Services.AddSingleton(mailbox);
        builder.Services.AddGrpc(g =>
        {
            g.Interceptors.Add<ClusterTokenInterceptor>();
            g.MaxReceiveMessageSize = options.Limits.MaxFrameBytes;
            g.MaxSendMessageSize = options.Limits.MaxFrameBytes;
        });
        builder.Services.AddOpenTelemetry().ConfigureResource(r => r.AddService("jetpack-worker"))
               .WithMetrics(m => m.AddMeter(MetricNames.WorkerMeter).AddPrometheusExporter());
        var node = new WorkerNode(options, membership, mailbox);
        node.tcp = new TcpDataPlaneServer(IPAddress.Parse(options.ListenAddress), options.DataPort, mailbox, options.Token, options.Tls);
        builder.Services.AddSingleton(node);
        var app = node.app = builder.Build();
        app.MapGrpcService<DataPlaneService>();
        mapServices(app);
        app.MapPrometheusScrapingEndpoint("/metrics");
        // probes (Kubernetes): alive while the host runs; ready once serving, i.e. now — a worker is
        // useful to the coordinator from its first heartbeat, whatever run it joins later
        app.MapGet("/healthz", () => "ok");
        app.MapGet("/readyz", () => node.Stopping.IsCancellationRequested ? Results.StatusCode(503) : Results.Text("ready"));
        await app.StartAsync();
        // Kestrel lists endpoints in the order they were configured: gRPC first, then /metrics.
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a)).ToList();
        if (addresses.Count != 2) throw new InvalidOperationException($"rank {options.Rank}: expected 2 bound addresses, got {string.Join(", ", addresses)}");
        node.Port = addresses[0].Port;
        node.MetricsPort = addresses[1].Port;
        if (options.Peers is not null) node.Connect(options.Peers);
        else if (options.WorldSize == 1) node.Connect([node.Address]);       // a world of one needs no peer list
        return node;
    }

    /// <summary>Opens the channels to the peers (host:port of every rank, own entry ignored).</summary>
    public void Connect(IReadOnlyList<string> peers)
    {
        if (peers.Count != Options.WorldSize) throw new ArgumentException($"{peers.Count} peer addresses for a world of {Options.WorldSize}");
        if (channels is not null) throw new InvalidOperationException($"rank {Options.Rank}: peers already connected");
        Open(peers);
    }

    private void Open(IReadOnlyList<string> peers)
    {
        channels = new PeerChannels(peers, Membership.Rank, Options.Token, Options.Limits, Options.Exchange.Transport, Options.Tls, Options.Exchange.Liveness, Mailbox.Outbox);
        exchange = new GrpcExpertExchange(Mailbox, channels, Options.Exchange, abort.Token, Metrics);
        reducer = new GrpcRingReducer(Mailbox, channels, Options.Exchange, abort.Token, Metrics);
    }

    /// <summary>
    /// A worker that joined a coordinator becomes rank <paramref name="rank"/> of run
    /// <paramref name="runId"/> (JoinJob): a job of another run still going is aborted first (its
    /// exchange and all-reduce end at once) and awaited, then the membership, the peer channels, the
    /// exchange and the reducer are replaced — fresh, so the all-reduce call numbers start at 0 on
    /// every rank of the new run. Joining the run whose job is running here is refused; joining
    /// again before that job starts just replaces the channels. Returns the run it aborted, or null.
    /// </summary>
    public async Task<string?> JoinAsync(string runId, int rank, int world, IReadOnlyList<string> peers, TimeSpan abortTimeout)
    {
        if (peers.Count != world) throw new ArgumentException($"{peers.Count} peer addresses for a world of {world}");
        await joinGate.WaitAsync();
        try
        {
            string? aborted = null;
            if (CurrentJob is { Finished: false } running)
            {
                if (running.JobId == runId) throw new InvalidOperationException($"rank {Membership.Rank} already runs '{runId}'");
                aborted = running.JobId;
                abort.Cancel();
                if (await Task.WhenAny(running.Ended, Task.Delay(abortTimeout)) != running.Ended)
                    throw new TimeoutException($"the job of run '{aborted}' did not end within {abortTimeout.TotalSeconds:F0} s of its abort");
            }
            Membership.Join(runId, rank, world);
            channels?.Dispose();
            reducer?.Dispose();
            abort.Dispose();
            abort = new CancellationTokenSource();
            Open(peers);
            return aborted;
        }
        finally { joinGate.Release(); }
    }

    /// <summary>Stops serving (gRPC and the TCP data plane): peers see this rank as gone.</summary>
    public Task StopAsync()
    {
        tcp?.Dispose();
        return app.StopAsync();
    }

    public async ValueTask DisposeAsync()
    {
        using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5))) await app.StopAsync(grace.Token);
        await app.DisposeAsync();
        tcp?.Dispose();
        channels?.Dispose();
        reducer?.Dispose();
        abort.Dispose();
        Metrics.Dispose();
    }
}
