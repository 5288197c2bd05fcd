using Grpc.Core;
using Grpc.Net.Client;
using Jetpack.Coordinator.Hosting;
using Jetpack.Coordinator.Recycling;
using Jetpack.Coordinator.Training;
using Jetpack.Coordinator.Workers;
using Jetpack.Protocol.Jobs;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Jetpack.Coordinator.Tests.Support;

/// <summary>
/// The real coordinator host (<see cref="CoordinatorHost.Build"/>: silo, JobService, WorkerRegistry,
/// /metrics) in this process on free loopback ports, with a fake recycler and training driver.
/// </summary>
public sealed class TestCoordinator : IAsyncDisposable
{
    public WebApplication App { get; }
    public CoordinatorOptions Options { get; }
    public Uri Grpc { get; private set; } = null!;
    public Uri Metrics { get; private set; } = null!;
    public JobService.JobServiceClient Jobs { get; private set; } = null!;
    public WorkerRegistry.WorkerRegistryClient Workers { get; private set; } = null!;
    public IGrainFactory Grains => App.Services.GetRequiredService<IGrainFactory>();
    GrpcChannel channel = null!;
    readonly Metadata headers = [];

    TestCoordinator(WebApplication app, CoordinatorOptions options) => (App, Options) = (app, options);

    public static async Task<TestCoordinator> StartAsync(string dataDir, FakeRecycler? recycler = null, ITrainingDriver? driver = null,
        TimeSpan? heartbeatTimeout = null, Action<CoordinatorOptions>? configure = null, TimeSpan? acquireTimeout = null, TimeProvider? clock = null)
    {
        var options = new CoordinatorOptions
        {
            DataDirectory = dataDir, Port = 0, MetricsPort = 0, SiloPort = FreePort.Next(), GatewayPort = 0,
            ClusterId = "test-" + Guid.NewGuid().ToString("N")[..8],
        };
        configure?.Invoke(options);
        var timeout = heartbeatTimeout ?? TimeSpan.FromSeconds(30);
        var pool = new WorkerPoolOptions
        {
            HeartbeatTimeout = timeout, CheckPeriod = TimeSpan.FromMilliseconds(Math.Min(200, timeout.TotalMilliseconds / 2)),
            AcquireTimeout = acquireTimeout ?? TimeSpan.Zero /* fail at once unless a test waits */
        };
        var app = CoordinatorHost.Build(options, pool, services =>
        {
            if (recycler is not null) services.AddSingleton<IRecyclingService>(recycler);
            if (driver is not null) services.AddSingleton(driver);
            if (clock is not null) services.AddSingleton(clock);
        });
        var coordinator = new TestCoordinator(app, options);
        await app.StartAsync();
        var (grpc, metrics) = CoordinatorHost.Addresses(app, options);
        coordinator.Grpc = grpc;
        coordinator.Metrics = new Uri(metrics, "/metrics");
        coordinator.channel = Protocol.Security.ClusterTls.Channel(grpc, options.Tls);
        if (options.ClusterToken is { } token) coordinator.headers.Add(Protocol.Security.ClusterToken.MetadataKey, new Protocol.Security.ClusterToken(token).HeaderValue);
        coordinator.Jobs = new JobService.JobServiceClient(coordinator.channel);
        coordinator.Workers = new WorkerRegistry.WorkerRegistryClient(coordinator.channel);
        return coordinator;
    }

    public CallOptions Call => new(headers, DateTime.UtcNow.AddSeconds(30));

    public Task<JobStatus> Submit(string yaml, string jobId = "") =>
        Jobs.SubmitAsync(new SubmitJobRequest { SpecText = yaml, Format = "yaml", Source = "test.yaml", JobId = jobId }, Call).ResponseAsync;

    public Task<JobStatus> Status(string jobId) => Jobs.GetStatusAsync(new JobRequest { JobId = jobId }, Call).ResponseAsync;

    public Task<JobStatus> WaitForPhase(string jobId, JobPhase phase, TimeSpan? timeout = null) =>
        Await.Until(() => Status(jobId), s => s.Phase == phase, $"job '{jobId}' to reach {phase}", timeout);

    public async Task RegisterWorker(string id) =>
        await Workers.RegisterAsync(new RegisterWorkerRequest { WorkerId = id, Endpoint = $"http://127.0.0.1:1/{id}", Slots = 1 }, Call);

    public async ValueTask DisposeAsync()
    {
        channel?.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
