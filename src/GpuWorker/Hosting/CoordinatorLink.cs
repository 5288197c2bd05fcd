using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Jetpack.Protocol.Jobs;
using Jetpack.Protocol.Security;

namespace Jetpack.GpuWorker.Hosting;

/// <summary>
/// A worker's membership in a coordinator's pool (jobs.proto WorkerRegistry): registers its id and
/// WorkerControl endpoint, then heartbeats every <see cref="CoordinatorLinkOptions.HeartbeatInterval"/>.
/// Every call carries the cluster token (<see cref="ClusterTokenCallInterceptor"/>).
/// The coordinator being away (a restart) is waited out with capped backoff; a NotFound heartbeat
/// (the coordinator lost the registration, or counted this worker dead after a gap in its heartbeats)
/// registers again. The work itself — JoinJob, LoadShard,
/// StartJob — comes from the coordinator over WorkerControl; this loop only keeps the worker known.
/// </summary>
public sealed class CoordinatorLink : IAsyncDisposable
{
    private readonly GrpcChannel channel;
    private readonly WorkerRegistry.WorkerRegistryClient registry;
    private readonly CoordinatorLinkOptions options;
    private readonly CancellationTokenSource stop = new();
    private readonly TaskCompletionSource registered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task loop;

    private CoordinatorLink(CoordinatorLinkOptions options, ClusterToken token, ClusterTls? tls, string workerId, string endpoint)
    {
        this.options = options; WorkerId = workerId; Endpoint = endpoint;
        channel = ClusterTls.Channel(options.Address, tls);
        registry = new WorkerRegistry.WorkerRegistryClient(channel.Intercept(new ClusterTokenCallInterceptor(token)));
        loop = Task.Run(RunAsync);
    }

    public string WorkerId { get; }
    public string Endpoint { get; }
    /// <summary>Completes at the first successful registration.</summary>
    public Task Registered => registered.Task;

    public static CoordinatorLink Start(WorkerNode node, CoordinatorLinkOptions options, ClusterToken token)
    {
        string host = options.AdvertiseHost ?? (node.Options.ListenAddress is "0.0.0.0" or "::" ? System.Net.Dns.GetHostName() : node.Options.ListenAddress);
        string id = options.WorkerId ?? $"{System.Net.Dns.GetHostName()}-{node.Port}";
        return new CoordinatorLink(options, token, node.Options.Tls, id, $"{ClusterTls.Scheme(node.Options.Tls)}://{host}:{node.Port}");
    }

    private CallOptions Call => new(null, DateTime.UtcNow.AddSeconds(10), stop.Token);

    private async Task RunAsync()
    {
        bool isRegistered = false;
        string? lastProblem = null;
        var delay = options.HeartbeatInterval;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                if (!isRegistered)
                {
                    await registry.RegisterAsync(new RegisterWorkerRequest { WorkerId = WorkerId, Endpoint = Endpoint, Slots = 1 }, Call);
                    isRegistered = true;
                    Console.Error.WriteLine($"jetpack-worker {WorkerId}: registered with {options.Address} as {Endpoint}");
                    registered.TrySetResult();
                }
                else await registry.HeartbeatAsync(new HeartbeatRequest { WorkerId = WorkerId }, Call);
                if (lastProblem is not null) Console.Error.WriteLine($"jetpack-worker {WorkerId}: coordinator {options.Address} reachable again");
                lastProblem = null;
                delay = options.HeartbeatInterval;
            }
            catch (RpcException e) when (!stop.IsCancellationRequested)
            {
                if (e.StatusCode == StatusCode.NotFound)
                {
                    // the coordinator lost the registration, or counted this worker dead (a heartbeat after a gap proves nothing to it): register again at once
                    Console.Error.WriteLine($"jetpack-worker {WorkerId}: {e.Status.Detail}; registering again");
                    isRegistered = false;
                    continue;
                }
                string problem = $"{e.StatusCode}: {e.Status.Detail}";
                if (problem != lastProblem) Console.Error.WriteLine($"jetpack-worker {WorkerId}: coordinator {options.Address}: {problem}; retrying");
                lastProblem = problem;
                // a coordinator that is restarting, or whose link is back, answers soon: look again within a second; anything else (a wrong token) less often
                delay = e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded ? TimeSpan.FromTicks(Math.Min(options.HeartbeatInterval.Ticks, TimeSpan.TicksPerSecond)) : options.MaxRetryDelay;
            }
            catch (Exception e) when (stop.IsCancellationRequested && e is OperationCanceledException or RpcException) { break; }
            try { await Task.Delay(delay, stop.Token); } catch (OperationCanceledException) { break; }
        }
    }

    public async ValueTask DisposeAsync()
    {
        stop.Cancel();
        try { await loop; } catch (OperationCanceledException) { }
        channel.Dispose();
        stop.Dispose();
    }
}
