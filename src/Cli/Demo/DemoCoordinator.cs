using System.Net;
using System.Net.Sockets;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Jetpack.Protocol.Security;
using Jetpack.Coordinator;
using Jetpack.Coordinator.Hosting;
using Jetpack.Coordinator.Jobs;
using Jetpack.Coordinator.Training;
using Jetpack.Coordinator.Workers;
using Jetpack.Protocol.Jobs;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using JobPhase = Jetpack.Protocol.Jobs.JobPhase;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Cli.Demo;

/// <summary>
/// The coordinator of <c>jetpack demo</c>: the real host (<see cref="CoordinatorHost.Build"/>: Orleans
/// silo with file-backed grain state under the demo's folder, JobService, WorkerRegistry, /metrics) in
/// this process on free loopback ports, spoken to over gRPC like any client. Its recycling runs
/// <c>jetpack recycle</c> as a child process once per content key (a rerun with the same upstream
/// checkpoints reuses it).
/// </summary>
public sealed class DemoCoordinator : IAsyncDisposable
{
    readonly WebApplication app;
    readonly GrpcChannel channel;

    DemoCoordinator(WebApplication app, Uri grpc, Uri metrics, ClusterToken token)
    {
        this.app = app; Grpc = grpc; Metrics = metrics; Token = token;
        channel = GrpcChannel.ForAddress(grpc);
        Jobs = new JobService.JobServiceClient(channel.Intercept(new ClusterTokenCallInterceptor(token)));
    }

    /// <summary>The cluster token of this demo's coordinator and workers (fresh per run, never printed).</summary>
    public ClusterToken Token { get; }

    public Uri Grpc { get; }
    public Uri Metrics { get; }
    public JobService.JobServiceClient Jobs { get; }


    public static async Task<DemoCoordinator> StartAsync(string dataDirectory)
    {
        var token = ClusterToken.Generate();
        var options = new CoordinatorOptions
        {
            DataDirectory = Path.GetFullPath(dataDirectory), Port = 0, MetricsPort = 0, SiloPort = FreePort(), GatewayPort = FreePort(),
            ClusterId = "jetpack-demo", ServiceId = "jetpack-demo", ClusterToken = token.Value,
        };
        // the workers heartbeat every 3 s (the launcher's default); a 60 s timeout rides out a loaded machine's stalls
        var app = CoordinatorHost.Build(options, new WorkerPoolOptions { HeartbeatTimeout = TimeSpan.FromSeconds(60) }, services =>
            // progress bars own the console: the host reports only errors
            services.Configure<LoggerFilterOptions>(f => { f.Rules.Clear(); f.MinLevel = LogLevel.Error; }));
        await app.StartAsync();
        var (grpc, metrics) = CoordinatorHost.Addresses(app, options);
        return new DemoCoordinator(app, grpc, new Uri(metrics, "/metrics"), token);
    }

    /// <summary>Submits the job (idempotent per id) and polls its status until <paramref name="done"/> holds or the job ends; the spinner shows the phase.</summary>
    public async Task<JobStatus> SubmitAndWait(JobSpec spec, string jobId, Func<JobStatus, bool> done, TimeSpan timeout)
    {
        var status = await Jobs.SubmitAsync(new SubmitJobRequest { SpecText = JobSpecReader.ToJson(spec), Format = "json", Source = "jetpack demo", JobId = jobId });
        var deadline = DateTime.UtcNow + timeout;
        await AnsiConsole.Status().StartAsync($"job {jobId}: {status.Phase.ToString().ToLowerInvariant()}", async ctx =>
        {
            while (!done(status) && status.Phase is not (JobPhase.Failed or JobPhase.Cancelled or JobPhase.Completed))
            {
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"job {jobId} did not get past {status.Phase} within {timeout.TotalMinutes:F0} min: {status.Message}");
                await Task.Delay(TimeSpan.FromMilliseconds(500));                // polling a status, not synchronising
                status = await Jobs.GetStatusAsync(new JobRequest { JobId = jobId });
                ctx.Status($"job {jobId}: {Markup.Escape(JobClient.Describe(status))}");
            }
        });
        return status;
    }

    /// <summary>Polls the job until it ends, with a progress bar of its steps (rank 0's loss and images/s in the description).</summary>
    public async Task<JobStatus> FollowTraining(string jobId, long totalSteps)
    {
        JobStatus status = await Jobs.GetStatusAsync(new JobRequest { JobId = jobId });
        await AnsiConsole.Progress().Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask($"job {jobId}", maxValue: totalSteps);
                while (status.Phase is not (JobPhase.Completed or JobPhase.Failed or JobPhase.Cancelled))
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(500));            // polling a status, not synchronising
                    status = await Jobs.GetStatusAsync(new JobRequest { JobId = jobId });
                    task.Description = Markup.Escape(JobClient.Describe(status));
                    task.Value = status.Step;
                }
            });
        return status;
    }

    static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public async ValueTask DisposeAsync()
    {
        channel.Dispose();
        using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10))) await app.StopAsync(grace.Token);
        await app.DisposeAsync();
    }
}
