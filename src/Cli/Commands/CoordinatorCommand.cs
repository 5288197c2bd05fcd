using System.CommandLine;
using Jetpack.Coordinator;
using Jetpack.Coordinator.Hosting;
using Jetpack.Coordinator.Workers;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Spectre.Console;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Cli.Commands;

/// <summary><c>jetpack coordinator</c>: runs the Orleans silo, the JobService and /metrics until stopped.</summary>
public static class CoordinatorCommand
{
    static readonly Option<string> DataDir = new("--data-dir") { Description = "jobs' outputs, recycled checkpoints and (localhost) grain state", DefaultValueFactory = _ => "jetpack-data" };
    static readonly Option<string> Clustering = new("--clustering") { Description = "localhost (one machine, state in files), redis (membership + state in Redis), kubernetes (redis + Orleans Kubernetes hosting)", DefaultValueFactory = _ => "localhost" };
    static readonly Option<string?> Redis = new("--redis") { Description = "Redis configuration, e.g. 127.0.0.1:6379 (default: $JETPACK_REDIS)", DefaultValueFactory = _ => Environment.GetEnvironmentVariable("JETPACK_REDIS") };
    static readonly Option<string> Listen = new("--listen") { Description = "address of the JobService and metrics endpoints", DefaultValueFactory = _ => "127.0.0.1" };
    static readonly Option<int> Port = new("--port") { Description = "JobService port (gRPC, cleartext HTTP/2); 0 = any free port", DefaultValueFactory = _ => 5080 };
    static readonly Option<int> MetricsPort = new("--metrics-port") { Description = "/metrics, /healthz, /readyz port (HTTP/1.1); 0 = any free port", DefaultValueFactory = _ => 9464 };
    static readonly Option<int> SiloPort = new("--silo-port") { Description = "Orleans silo-to-silo port", DefaultValueFactory = _ => 11111 };
    static readonly Option<int> GatewayPort = new("--gateway-port") { Description = "Orleans client gateway port (0 = none)", DefaultValueFactory = _ => 30000 };
    static readonly Option<string> ClusterId = new("--cluster-id") { Description = "Orleans cluster id", DefaultValueFactory = _ => "jetpack" };
    static readonly Option<double> HeartbeatTimeout = new("--heartbeat-timeout") { Description = "seconds without a heartbeat after which a worker is dead", DefaultValueFactory = _ => 15 };
    static readonly Option<double> AcquireTimeout = new("--acquire-timeout") { Description = "seconds a job waits for enough live idle workers before it fails", DefaultValueFactory = _ => 120 };

    public static Command Create()
    {
        var cmd = new Command("coordinator", "Run the coordinator: Orleans silo (jobs, workers, recycling once per source × recipe), gRPC JobService, Prometheus /metrics. Stops on Ctrl-C / SIGTERM.")
        {
            DataDir, Clustering, Redis, Listen, Port, MetricsPort, SiloPort, GatewayPort, ClusterId, HeartbeatTimeout, AcquireTimeout, JobClient.TokenFile,
        };
        cmd.SetAction((r, cancel) => Run(r, cancel));
        return cmd;
    }

    static async Task<int> Run(ParseResult r, CancellationToken cancel)
    {
        var options = new CoordinatorOptions
        {
            DataDirectory = r.GetValue(DataDir)!,
            Clustering = r.GetValue(Clustering) switch
            {
                "localhost" => ClusteringMode.Localhost,
                "redis" => ClusteringMode.Redis,
                "kubernetes" => ClusteringMode.Kubernetes,
                var x => throw new ArgumentException($"--clustering must be localhost, redis or kubernetes, not '{x}'"),
            },
            Redis = r.GetValue(Redis), ListenAddress = r.GetValue(Listen)!, Port = r.GetValue(Port), MetricsPort = r.GetValue(MetricsPort),
            SiloPort = r.GetValue(SiloPort), GatewayPort = r.GetValue(GatewayPort), ClusterId = r.GetValue(ClusterId)!,
            ClusterToken = JobClient.Token(r.GetValue(JobClient.TokenFile)),
        };
        double timeout = r.GetValue(HeartbeatTimeout);
        if (timeout <= 0) throw new ArgumentException($"--heartbeat-timeout must be > 0, got {timeout}");
        var pool = new WorkerPoolOptions
        {
            HeartbeatTimeout = TimeSpan.FromSeconds(timeout),
            CheckPeriod = TimeSpan.FromSeconds(Math.Min(2, timeout / 2)),
            AcquireTimeout = TimeSpan.FromSeconds(r.GetValue(AcquireTimeout)),
        };
        await using var app = CoordinatorHost.Build(options, pool);
        await app.StartAsync(cancel);
        var (grpc, metrics) = CoordinatorHost.Addresses(app, options);
        // Scripts and tests read these two lines to find the endpoints (ports may be 0 = any).
        Console.WriteLine($"jobs: {grpc.ToString().TrimEnd('/')}");
        Console.WriteLine($"metrics: {metrics.ToString().TrimEnd('/')}/metrics");
        AnsiConsole.MarkupLine($"coordinator up ({options.Clustering.ToString().ToLowerInvariant()} clustering, data in {Markup.Escape(Path.GetFullPath(options.DataDirectory))}{(options.ClusterToken is null ? ", no cluster token: every caller is trusted" : "")})");
        await app.WaitForShutdownAsync(cancel);
        await app.StopAsync(CancellationToken.None);
        return ExitCodes.Ok;
    }
}
