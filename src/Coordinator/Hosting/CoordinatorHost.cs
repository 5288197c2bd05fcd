using System.Net;
using Jetpack.Coordinator.Grains;
using Jetpack.Coordinator.Recycling;
using Jetpack.Coordinator.Services;
using Jetpack.Coordinator.Telemetry;
using Jetpack.Coordinator.Training;
using Jetpack.Coordinator.Workers;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Orleans.Configuration;
using Orleans.Serialization;
using Orleans.Storage;
using StackExchange.Redis;

namespace Jetpack.Coordinator.Hosting;

/// <summary>
/// The coordinator process: one ASP.NET Core host with the Orleans silo, the gRPC JobService
/// (HTTP/2 on <see cref="CoordinatorOptions.Port"/>: cleartext, or mutual TLS with <see cref="CoordinatorOptions.Tls"/>)
/// and /metrics, /healthz, /readyz (HTTP/1.1 on <see cref="CoordinatorOptions.MetricsPort"/>, TLS with <see cref="CoordinatorOptions.MetricsTls"/>).
/// </summary>
public static class CoordinatorHost
{
    /// <param name="overrides">Replaces services after the defaults (tests swap the recycler and the training driver).</param>
    public static WebApplication Build(CoordinatorOptions options, WorkerPoolOptions pool, Action<IServiceCollection>? overrides = null)
    {
        options.Validate();
        pool.Validate();
        var recycling = new RecyclingOptions { Directory = Path.GetFullPath(options.RecycledDirectory) };
        recycling.Validate();
        Directory.CreateDirectory(options.DataDirectory);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Orleans", LogLevel.Warning).AddFilter("Orleans.Runtime.Silo", LogLevel.Error).AddFilter("Microsoft", LogLevel.Warning).AddFilter("Polly", LogLevel.Warning);
        builder.Logging.AddFilter("Jetpack.Tls", LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k =>
        {
            var address = IPAddress.Parse(options.ListenAddress);
            var tlsLog = k.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("Jetpack.Tls");
            k.Listen(address, options.Port, l =>
            {
                l.Protocols = HttpProtocols.Http2;
                if (options.Tls is { } tls) l.UseClusterTls(tls, tlsLog, "coordinator job API (JobService, WorkerRegistry)");
            });
            k.Listen(address, options.MetricsPort, l =>
            {
                l.Protocols = HttpProtocols.Http1;
                if (options.MetricsTls) l.UseClusterTls(options.Tls!, tlsLog, "coordinator metrics endpoint");
            });
        });

        builder.UseOrleans(silo => ConfigureSilo(silo, options));

        var services = builder.Services;
        services.AddSingleton(Microsoft.Extensions.Options.Options.Create(options));
        services.AddSingleton(Microsoft.Extensions.Options.Options.Create(pool));
        services.AddSingleton(Microsoft.Extensions.Options.Options.Create(recycling));
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<CoordinatorMetrics>();
        services.AddSingleton<IRecyclingService, ProcessRecyclingService>();
        services.AddSingleton<ITrainingDriver, GrpcTrainingDriver>();
        services.AddHostedService<ResumeJobsOnStart>();
        if (options.ClusterToken is { } token) services.AddSingleton(new ClusterToken(token));
        services.AddGrpc(g =>
        {
            if (options.ClusterToken is not null) g.Interceptors.Add<ClusterTokenInterceptor>();   // null: an open test coordinator
            // The largest request is a job spec (JobSpecReader.MaxBytes) plus its envelope; anything
            // larger is refused by gRPC before it is buffered whole (issue 12; the default is 4 MiB).
            g.MaxReceiveMessageSize = Jobs.JobSpecReader.MaxBytes + (64 << 10);
        });
        services.AddOpenTelemetry().ConfigureResource(r => r.AddService("jetpack-coordinator")).WithMetrics(m => m.AddMeter(MetricNames.CoordinatorMeter).AddPrometheusExporter());
        overrides?.Invoke(services);

        var app = builder.Build();
        app.MapGrpcService<JobService>(); // gRPC needs HTTP/2: only the JobService endpoint speaks it
        app.MapGrpcService<WorkerRegistryService>();
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapGet("/healthz", () => "ok");
        app.MapGet("/readyz", async (IGrainFactory grains) =>
        {
            // Ready when the silo answers a grain call (membership joined, storage reachable).
            await grains.GetGrain<Grains.Contracts.IJobIndexGrain>(0).List();
            return Results.Text("ready");
        });
        return app;
    }

    static void ConfigureSilo(ISiloBuilder silo, CoordinatorOptions options)
    {
        switch (options.Clustering)
        {
            case ClusteringMode.Localhost:
                silo.UseLocalhostClustering(options.SiloPort, options.GatewayPort, serviceId: options.ServiceId, clusterId: options.ClusterId);
                string stateDir = Path.GetFullPath(options.GrainStateDirectory);
                silo.Services.AddKeyedSingleton<IGrainStorage>(StorageNames.Jobs, (sp, _) => new FileGrainStorage(stateDir, sp.GetRequiredService<Serializer>()));
                break;
            case ClusteringMode.Redis or ClusteringMode.Kubernetes:
                var redis = ConfigurationOptions.Parse(options.Redis!);
                silo.Configure<ClusterOptions>(c => (c.ClusterId, c.ServiceId) = (options.ClusterId, options.ServiceId));
                if (options.Clustering == ClusteringMode.Kubernetes)
                    silo.UseKubernetesHosting(); // pod name/IP, cluster and service ids from the downward API (deploy/k8s)
                else
                    silo.ConfigureEndpoints(IPAddress.Loopback, options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: false);
                silo.UseRedisClustering(r => r.ConfigurationOptions = redis);
                // Grain state writes fail at once while Redis is away instead of waiting out the client's
                // backlog (5 s each): JobGrain.Persist keeps the state and writes it again later, and a write
                // that waited would hold the job grain, and the progress calls behind it, meanwhile (fault 6).
                var storage = redis.Clone();
                storage.BacklogPolicy = BacklogPolicy.FailFast;
                storage.AbortOnConnectFail = false;
                silo.AddRedisGrainStorage(StorageNames.Jobs, r => r.ConfigurationOptions = storage);
                break;
        }
    }

    /// <summary>The bound JobService (gRPC) and metrics base addresses, after <c>StartAsync</c>.</summary>
    public static (Uri Grpc, Uri Metrics) Addresses(WebApplication app, CoordinatorOptions options)
    {
        var bound = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a)).ToList();
        // Kestrel lists endpoints in the order they were configured: the gRPC one first.
        if (bound.Count != 2) throw new InvalidOperationException($"expected 2 bound addresses, got {string.Join(", ", bound)}");
        return (bound[0], bound[1]);
    }
}
