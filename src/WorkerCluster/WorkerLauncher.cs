using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Jetpack.Protocol.Channels;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Wire;

namespace Jetpack.WorkerCluster;

/// <summary>
/// Starts N <c>jetpack-worker</c> processes on loopback with a static peer list and a fresh cluster
/// token (in a 0600 file), waits for each one's readiness line and Health reply within a timeout,
/// and on any failure kills them all and reports every worker's exit code and stderr tail. Ports
/// are probed free (bind port 0); another process can take one in between, so a launch that fails
/// because a worker could not bind is retried with new ports. Used by `jetpack train --workers N`,
/// `jetpack bench exchange` and the process-level tests. With <see cref="LaunchOptions.Tls"/> the
/// workers serve mutual TLS only and the launcher's Health calls present the same certificate.
/// </summary>
public sealed class WorkerLauncher : IAsyncDisposable
{
    private readonly List<WorkerProcess> workers = [];
    private readonly List<GrpcChannel> channels = [];
    private readonly string workDir;
    private readonly bool ownsWorkDir;

    private WorkerLauncher(LaunchOptions options, string workDir, bool ownsWorkDir, ClusterToken token)
    {
        Options = options; this.workDir = workDir; this.ownsWorkDir = ownsWorkDir; Token = token;
    }

    public LaunchOptions Options { get; }
    public ClusterToken Token { get; }
    public IReadOnlyList<WorkerProcess> Workers => workers;
    public IReadOnlyList<string> Addresses => workers.Select(w => w.Address).ToList();
    /// <summary>host:port of every rank's /metrics (Prometheus scrape targets).</summary>
    public IReadOnlyList<string> MetricsAddresses => workers.Select(w => w.MetricsAddress ?? throw new InvalidOperationException($"rank {w.Rank} named no metrics address")).ToList();

    public static async Task<WorkerLauncher> StartAsync(LaunchOptions options)
    {
        options.Validate();
        for (int attempt = 1; ; attempt++)
        {
            var launcher = Create(options);
            try
            {
                await launcher.StartWorkersAsync();
                return launcher;
            }
            catch (LaunchFailedException e) when (attempt < 3 && e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                await launcher.DisposeAsync();                                   // a probed port was taken: new ports
            }
            catch
            {
                await launcher.DisposeAsync();
                throw;
            }
        }
    }

    private static WorkerLauncher Create(LaunchOptions options)
    {
        bool owns = options.WorkDirectory is null;
        var dir = options.WorkDirectory ?? Directory.CreateTempSubdirectory("jetpack-workers-").FullName;
        Directory.CreateDirectory(dir);
        var token = options.Token ?? ClusterToken.Generate();
        var tokenFile = Path.Combine(dir, "cluster.token");
        File.WriteAllText(tokenFile, token.Value);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(tokenFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return new WorkerLauncher(options, dir, owns, token);
    }

    /// <summary>Where rank <paramref name="r"/> listens: its network namespace's address, else loopback.</summary>
    string Host(int r) => Options.Namespaces?[r].Address ?? "127.0.0.1";

    /// <summary>The command line of worker <paramref name="r"/> listening on <paramref name="port"/> (peers: the static cluster's list).</summary>
    private ProcessStartInfo StartInfo(int r, int port, string peers)
    {
        int world = Options.WorldSize;
        var dll = Options.WorkerDll ?? Path.Combine(AppContext.BaseDirectory, "jetpack-worker.dll");
        if (!File.Exists(dll)) throw new FileNotFoundException($"worker executable not found: {dll}", dll);
        int threads = Options.ThreadsPerWorker > 0 ? Options.ThreadsPerWorker : Math.Max(1, Environment.ProcessorCount / world);
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        // in a namespace: `ip netns exec NS dotnet …` (ip execs the command: the pid is the worker's)
        var psi = new ProcessStartInfo(Options.Namespaces is null ? "dotnet" : "ip");
        if (Options.Namespaces?[r] is { } ns)
            foreach (var a in new[] { "netns", "exec", ns.Name, "dotnet" }) psi.ArgumentList.Add(a);
        string[] placement = Options.Coordinator is { } coordinator
            ? ["--coordinator", coordinator.ToString(), "--port", port.ToString(), "--worker-id", Options.WorkerIdPrefix + r,
               "--heartbeat-seconds", Options.HeartbeatInterval.TotalSeconds.ToString(invariant)]
            : ["--rank", r.ToString(), "--world", world.ToString(), "--peers", peers, "--job", Options.JobId];
        foreach (var a in new[] { dll }.Concat(placement).Concat(
                 [
                     "--token-file", Path.Combine(workDir, "cluster.token"),
                     "--deadline-seconds", Options.StepDeadline.TotalSeconds.ToString(invariant),
                     "--parent-pid", Environment.ProcessId.ToString(), "--threads", threads.ToString(),
                     "--data-plane", Options.DataPlane.Name(), "--listen", Host(r),
                 ]).Concat(Options.Tls is { } tls ? ["--tls-cert", tls.CertFile, "--tls-key", tls.KeyFile, "--tls-ca", tls.CaFile] : []))
            psi.ArgumentList.Add(a);
        if (Options.ChunkBytes is { } chunk) { psi.ArgumentList.Add("--chunk-bytes"); psi.ArgumentList.Add(chunk.ToString(invariant)); }
        psi.Environment.Remove(ClusterToken.EnvVariable);                       // the file is the one source
        psi.Environment["OMP_NUM_THREADS"] = threads.ToString();
        foreach (var (k, v) in Options.Environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        return psi;
    }

    /// <summary>
    /// Starts worker <paramref name="rank"/> again after it exited (a coordinator's worker only: it
    /// registers under the same id, on a fresh port, and the coordinator hands it runs again); waits
    /// for its readiness line. The other workers are not touched (issue 20 fault 0: supervise, do not
    /// tear the siblings down).
    /// </summary>
    public async Task<WorkerProcess> RestartAsync(int rank, CancellationToken cancel)
    {
        if (Options.Coordinator is null) throw new InvalidOperationException("only workers of a coordinator restart alone: a static cluster's peers know each other's ports");
        var old = workers[rank];
        if (!old.HasExited) throw new InvalidOperationException($"worker rank {rank} (pid {old.Pid}) still runs");
        int port = FreePorts(1)[0];
        var fresh = new WorkerProcess(rank, $"127.0.0.1:{port}", StartInfo(rank, port, ""));
        workers[rank] = fresh;
        old.Dispose();
        if (rank < channels.Count) { channels[rank].Dispose(); channels[rank] = WireChannels.Open(fresh.Address, WireLimits.Default, Options.Tls); }
        var first = await Task.WhenAny(fresh.Ready, fresh.Exited).WaitAsync(Options.ReadyTimeout, cancel);
        if (first == fresh.Exited) throw new LaunchFailedException($"worker rank {rank} exited with code {fresh.Exited.Result} before it was ready", Report());
        return fresh;
    }

    private async Task StartWorkersAsync()
    {
        int world = Options.WorldSize;
        var ports = FreePorts(world);
        var peers = string.Join(',', ports.Select((p, r) => $"{Host(r)}:{p}"));
        for (int r = 0; r < world; r++) workers.Add(new WorkerProcess(r, $"{Host(r)}:{ports[r]}", StartInfo(r, ports[r], peers)));
        using var timeout = new CancellationTokenSource(Options.ReadyTimeout);
        try
        {
            foreach (var w in workers)
            {
                var first = await Task.WhenAny(w.Ready, w.Exited).WaitAsync(timeout.Token);
                if (first == w.Exited)
                    throw new LaunchFailedException($"worker rank {w.Rank} exited with code {w.Exited.Result} before it was ready", Report());
            }
            for (int r = 0; r < world; r++)
            {
                var health = await Control(r).HealthAsync(new HealthRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: timeout.Token);
                var (rank, size) = Options.Coordinator is null ? (r, world) : (0, 1);     // a coordinator's worker is nobody's rank until it joins a run
                if (health.Rank != rank || health.WorldSize != size || health.ProcessId != workers[r].Pid)
                    throw new LaunchFailedException($"{workers[r].Address} answered as rank {health.Rank} of {health.WorldSize} (pid {health.ProcessId}), expected rank {rank} of {size} (pid {workers[r].Pid})", Report());
            }
        }
        catch (OperationCanceledException)
        {
            var late = workers.Where(w => !w.Ready.IsCompleted).Select(w => w.Rank);
            throw new LaunchFailedException($"workers were not ready within {Options.ReadyTimeout.TotalSeconds:F0} s (not ready: ranks {string.Join(", ", late)})", Report());
        }
        catch (RpcException e)
        {
            throw new LaunchFailedException($"a worker's Health call failed: {e.Status.StatusCode}: {e.Status.Detail}", Report());
        }
    }

    /// <summary>
    /// Runs one training job on these workers (<see cref="ClusterClient"/>): StartJob on every rank with
    /// the job id they were started with (no rank refuses an early peer), then every rank's progress to
    /// its end. A process that dies ends its stream: its rank's reason then gives its exit code and stderr.
    /// </summary>
    public Task<ClusterOutcome> RunJobAsync(Jetpack.Application.Runs.WorkerJobSpec spec, string? resumeFrom = null, long untilStep = 0,
                                            Action<Progress>? onRank0 = null, CancellationToken ct = default) =>
        ClusterClient.Of(this).RunAsync(new StartJobRequest { JobId = Options.JobId, SpecJson = spec.ToJson(), ResumeFrom = resumeFrom ?? "", UntilStep = untilStep }, onRank0, ct);

    /// <summary>A control client for one rank (with the token).</summary>
    public WorkerControl.WorkerControlClient Control(int rank)
    {
        while (channels.Count <= rank) channels.Add(WireChannels.Open(workers[channels.Count].Address, WireLimits.Default, Options.Tls));
        return new WorkerControl.WorkerControlClient(channels[rank].Intercept(new ClusterTokenCallInterceptor(Token)));
    }

    /// <summary>Every worker's state, exit code and stderr tail, for error messages.</summary>
    public string Report() => string.Join("\n", workers.Select(w =>
        $"--- rank {w.Rank} (pid {w.Pid}, {w.Address}): {(w.HasExited ? $"exit code {w.Exited.Result}" : "running")}\n{w.StandardError.TrimEnd()}"));

    /// <summary>Kills one worker (tests: a peer disappearing).</summary>
    public Task KillAsync(int rank) => workers[rank].KillAsync(TimeSpan.FromSeconds(10));

    /// <summary>Kills every worker that still runs (they hold no state a checkpoint does not) and returns the exit codes.</summary>
    public async Task<int[]> StopAsync()
    {
        foreach (var w in workers) await w.KillAsync(TimeSpan.FromSeconds(10));
        return workers.Select(w => w.Exited.Result).ToArray();
    }

    private static int[] FreePorts(int n)
    {
        var listeners = Enumerable.Range(0, n).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        foreach (var l in listeners) l.Start();
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        foreach (var l in listeners) l.Stop();
        return ports;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var w in workers)
        {
            try { await w.KillAsync(TimeSpan.FromSeconds(10)); } catch (TimeoutException) { /* reported by the OS reaper */ }
            w.Dispose();
        }
        foreach (var c in channels) c.Dispose();
        if (ownsWorkDir) try { Directory.Delete(workDir, recursive: true); } catch (IOException) { }
    }
}
