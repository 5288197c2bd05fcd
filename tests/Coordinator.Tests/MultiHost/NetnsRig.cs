using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Coordinator.Tests.Training;
using Jetpack.Protocol.Jobs;

namespace Jetpack.Coordinator.Tests.MultiHost;

/// <summary>
/// The multi-host rig (issue 20, docs/operations/cluster-rig.md): <c>scripts/cluster-netns.sh up N</c>
/// puts the coordinator with Redis, Prometheus and N workers each in its own network namespace with
/// its own address on one bridge (198.19.20.0/24 unless $JETPACK_RIG_NET says otherwise, inside the benchmarking range 198.18.0.0/15; no
/// route out), links shaped by tc tbf. The processes run from <see cref="Layout"/> (one variable to
/// switch to the published layout the image holds). Shared by the MultiHost tests (one collection,
/// so one rig at a time); each test starts its own workers and ends them. Dispose (also after a
/// failed test or a crashed earlier run, since <c>up</c> removes stale namespaces first) kills what
/// runs in the namespaces and deletes namespaces, veths and the bridge.
/// </summary>
public sealed class NetnsRig : IAsyncLifetime
{
    /// <summary>The worker namespaces the rig makes: enough for 3 ranks and a replacement.</summary>
    public const int WorkerSlots = 4;
    /// <summary>The directory holding jetpack.dll and jetpack-worker.dll: $JETPACK_LAYOUT (e.g. the output of
    /// scripts/publish.sh), else this test's build output (it holds both).</summary>
    public static string Layout => Environment.GetEnvironmentVariable("JETPACK_LAYOUT") is { Length: > 0 } l ? l : AppContext.BaseDirectory;
    /// <summary>Per-link bandwidth (tc tbf), as in a cluster with 2 Gbit/s per worker.</summary>
    public const string LinkRate = "2gbit";
    /// <summary>The namespaces' name prefix and the /24 (inside 198.18.0.0/15) the rig numbers from: $JETPACK_RIG and
    /// $JETPACK_RIG_NET when set (so that two people on one machine run two rigs side by side: <c>up</c> removes a
    /// rig of the same prefix first), else jpmh and 198.19.20. cluster-netns.sh checks both.</summary>
    static readonly string Prefix = Environment.GetEnvironmentVariable("JETPACK_RIG") is { Length: > 0 } p ? p : "jpmh";
    static readonly string Net = Environment.GetEnvironmentVariable("JETPACK_RIG_NET") is { Length: > 0 } n ? n : "198.19.20";
    const int CoordinatorPort = 5080, CoordinatorMetricsPort = 9464, WorkerPort = 7000, WorkerMetricsPort = 7002, WorkerDataPort = 7001, PrometheusPort = 9090;

    public DriverCluster Cluster { get; } = new();
    public string TokenFile { get; private set; } = "";
    public string DataDir { get; private set; } = "";
    public Uri Coordinator { get; private set; } = null!;
    public Uri Prometheus { get; private set; } = null!;
    public JobService.JobServiceClient Jobs { get; private set; } = null!;
    public WorkerRegistry.WorkerRegistryClient Registry { get; private set; } = null!;
    /// <summary>The coordinator's store (clustering and grain state): redis-server in the coordinator's namespace, on its loopback.</summary>
    public RedisServer Redis { get; private set; } = null!;
    readonly List<RigProcess> services = [];
    RigProcess? coordinator;
    /// <summary>The coordinator's output (its log), the last 16,000 characters.</summary>
    public string CoordinatorOutput => coordinator?.Output ?? "";
    /// <summary>The coordinator's process (its output, a wait for a line).</summary>
    public RigProcess CoordinatorProcess => coordinator ?? throw new InvalidOperationException("the rig's coordinator has not started");
    readonly List<(string Name, RigProcess Process)> workers = [];
    GrpcChannel? channel;

    /// <summary>Why the rig cannot run here, or null (it needs root, iproute2, redis-server and prometheus).</summary>
    public static string? Unavailable =>
        !Environment.IsPrivilegedProcess ? "MultiHost tests need root (network namespaces, veths, a bridge); CI runs them as root"
        : !File.Exists("/usr/sbin/ip") && !File.Exists("/usr/bin/ip") && !File.Exists("/sbin/ip") ? "iproute2 (ip, tc) is not installed"
        : !File.Exists("/usr/bin/redis-server") ? "redis-server is not installed (scripts/setup.sh)"
        : !File.Exists("/usr/bin/prometheus") ? "prometheus is not installed (scripts/setup.sh)"
        : null;

    public static string Script => Path.Combine(RepoRoot(), "scripts", "cluster-netns.sh");

    static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "scripts", "cluster-netns.sh"))) return d.FullName;
        throw new FileNotFoundException($"scripts/cluster-netns.sh not found above {AppContext.BaseDirectory}");
    }

    public static string Address(string member) => member switch
    {
        "coord" => $"{Net}.2",
        "prom" => $"{Net}.3",
        "host" => $"{Net}.1",
        _ when member.StartsWith('w') && int.TryParse(member[1..], out int i) => $"{Net}.{10 + i}",
        _ => throw new ArgumentException($"no rig member '{member}'"),
    };

    /// <summary>Runs the rig script (bounded to 60 s); a failure throws with its output.</summary>
    public static string Rig(params string[] args)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["JETPACK_RIG"] = Prefix;
        psi.Environment["JETPACK_RIG_NET"] = Net;
        psi.Environment["JETPACK_RIG_RATE"] = LinkRate;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(true); throw new TimeoutException($"cluster-netns.sh {string.Join(' ', args)} took over 60 s"); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"cluster-netns.sh {string.Join(' ', args)} exited {p.ExitCode}: {stderr.Result}{stdout.Result}");
        return stdout.Result;
    }

    /// <summary>The namespace of a rig member (coord, prom, w0 …).</summary>
    public static string Ns(string member) => $"{Prefix}-{member}";

    public async Task InitializeAsync()
    {
        if (Unavailable is not null) return;
        Rig("up", WorkerSlots.ToString());
        TokenFile = Cluster.Dir.File("token");
        File.WriteAllText(TokenFile, Cluster.Token.Value);
        DataDir = Cluster.Dir.File("coordinator");
        // persistent as deploy/k8s runs it (append-only file): fault 6 kills and restarts it mid-job
        Redis = new RedisServer(persistent: true, netns: Ns("coord"));
        var coordinator = StartDotnet("coord", "coordinator", "jetpack.dll", "coordinator", "--clustering", "redis", "--redis", Redis.Configuration,
            "--listen", Address("coord"), "--port", $"{CoordinatorPort}", "--metrics-port", $"{CoordinatorMetricsPort}", "--silo-port", "11111", "--gateway-port", "0",
            "--data-dir", DataDir, "--token-file", TokenFile, "--acquire-timeout", "60");
        services.Add(coordinator);
        this.coordinator = coordinator;
        await coordinator.WaitForLine("metrics: ", TimeSpan.FromSeconds(90));
        Coordinator = new Uri($"http://{Address("coord")}:{CoordinatorPort}");
        channel = GrpcChannel.ForAddress(Coordinator);
        Jobs = new JobService.JobServiceClient(channel);
        Registry = new WorkerRegistry.WorkerRegistryClient(channel);

        string promDir = Cluster.Dir.File("prometheus");
        Directory.CreateDirectory(promDir);
        string targets = string.Join(", ", Enumerable.Range(0, WorkerSlots).Select(i => $"'{Address($"w{i}")}:{WorkerMetricsPort}'"));
        File.WriteAllText(Path.Combine(promDir, "prometheus.yml"), $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 900ms
            scrape_configs:
              - job_name: jetpack-coordinator
                static_configs:
                  - targets: ['{Address("coord")}:{CoordinatorMetricsPort}']
              - job_name: jetpack-worker
                static_configs:
                  - targets: [{targets}]
            """);
        services.Add(Start("prom", "prometheus", "/usr/bin/prometheus", $"--config.file={promDir}/prometheus.yml", $"--storage.tsdb.path={promDir}/tsdb",
                           $"--web.listen-address={Address("prom")}:{PrometheusPort}"));
        Prometheus = new Uri($"http://{Address("prom")}:{PrometheusPort}");
    }

    public CallOptions Call => new(new Metadata { { "authorization", "Bearer " + Cluster.Token.Value } }, DateTime.UtcNow.AddSeconds(30));

    public async Task<JobStatus> Submit(string yaml)
    {
        var status = await Jobs.SubmitAsync(new SubmitJobRequest { SpecText = yaml, Format = "yaml", Source = "rig.yaml" }, Call).ResponseAsync;
        lock (submitted) submitted.Add(status.JobId);
        return status;
    }

    readonly List<string> submitted = [];

    public Task<JobStatus> Status(string job) => Jobs.GetStatusAsync(new JobRequest { JobId = job }, Call).ResponseAsync;

    public string OutDir(string job) => Path.Combine(DataDir, "jobs", job);

    /// <summary>Starts jetpack-worker in namespace w<paramref name="slot"/> (worker id <paramref name="id"/>), registered with the coordinator.</summary>
    public async Task<RigProcess> StartWorker(int slot, string id)
    {
        string member = $"w{slot}";
        var w = StartDotnet(member, id, "jetpack-worker.dll", "--coordinator", Coordinator.ToString(), "--worker-id", id,
            "--listen", Address(member), "--port", $"{WorkerPort}", "--data-port", $"{WorkerDataPort}", "--metrics-port", $"{WorkerMetricsPort}",
            "--token-file", TokenFile, "--threads", "1", "--data-plane", "tcp");
        lock (workers) workers.Add((id, w));
        await w.WaitForLine(Jetpack.Protocol.Control.WorkerReadiness.Prefix, TimeSpan.FromSeconds(90));
        return w;
    }

    /// <summary>Starts <paramref name="count"/> workers in w0.. (ids prefix0..) and waits until the coordinator lists them alive.</summary>
    public async Task<List<RigProcess>> StartWorkers(int count, string prefix)
    {
        var started = await Task.WhenAll(Enumerable.Range(0, count).Select(i => StartWorker(i, $"{prefix}{i}")));
        await DriverCluster.WaitAlive(Registry, Call, Enumerable.Range(0, count).Select(i => $"{prefix}{i}").ToArray());
        return [.. started];
    }

    /// <summary>Ends every worker a test started and restores every link and neighbour entry, and Redis if a test left it killed.</summary>
    public async Task ResetWorkers()
    {
        // fault 6 failed between its kill and its restart: the next test (and the cancels below) need the store
        if (Redis is { Running: false }) Redis.StartAgain();
        // a job a failed test left running would recover onto the next test's workers: cancel it first
        List<string> jobs;
        lock (submitted) { jobs = [.. submitted]; submitted.Clear(); }
        foreach (var job in jobs) await Jobs.CancelAsync(new JobRequest { JobId = job }, Call);
        List<(string, RigProcess)> all;
        lock (workers) { all = [.. workers]; workers.Clear(); }
        foreach (var (_, w) in all) await w.DisposeAsync();
        // the next test's job must not be handed a worker that is gone but not yet timed out
        var ids = all.Select(w => w.Item1).ToHashSet();
        if (ids.Count > 0 && channel is not null)
            await Await.Until(async () => (await Registry.ListWorkersAsync(new ListWorkersRequest(), Call)).Workers.Count(w => w.Alive && ids.Contains(w.WorkerId)),
                              alive => alive == 0, "the coordinator to count the ended workers dead", TimeSpan.FromSeconds(30));
        for (int i = 0; i < WorkerSlots; i++)
        {
            Rig("link-up", $"w{i}");
            for (int j = i + 1; j < WorkerSlots; j++) Rig("heal", $"w{i}", $"w{j}");
        }
    }

    RigProcess Start(string member, string name, string program, params string[] args) =>
        new(name, "ip", ["netns", "exec", Ns(member), program, .. args]);

    RigProcess StartDotnet(string member, string name, string dll, params string[] args) =>
        Start(member, name, "dotnet", [Path.Combine(Layout, dll), .. args]);

    /// <summary>Appends one measured figure to $JETPACK_RIG_RESULTS (a JSON line per fault), when set.</summary>
    public static void Record(object figure)
    {
        if (Environment.GetEnvironmentVariable("JETPACK_RIG_RESULTS") is { Length: > 0 } path)
            File.AppendAllText(path, JsonSerializer.Serialize(figure) + "\n");
    }

    public async Task DisposeAsync()
    {
        if (Unavailable is not null) { Cluster.Dir.Dispose(); return; }
        try
        {
            try { await ResetWorkers(); } catch (InvalidOperationException) { /* the rig goes anyway */ }
            foreach (var s in Enumerable.Reverse(services)) await s.DisposeAsync();
            Redis?.Dispose();
            channel?.Dispose();
        }
        finally
        {
            // whatever failed above (a Redis that would not start again, a worker that would not die): the namespaces go
            Rig("down");
            await Cluster.DisposeAsync();
        }
    }
}

/// <summary>One process in a rig namespace (<c>ip netns exec NS …</c> execs in place, so its pid is the program's):
/// its output, a wait for a line, SIGSTOP/SIGCONT, and a kill on dispose.</summary>
public sealed class RigProcess : IAsyncDisposable
{
    readonly Process process;
    readonly StringBuilder output = new();
    readonly List<(string What, Func<string, bool> Match, TaskCompletionSource<string> Seen)> waits = [];

    public RigProcess(string name, string program, IReadOnlyList<string> args)
    {
        Name = name;
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("JETPACK_CLUSTER_TOKEN");
        process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => Line(e.Data);
        process.ErrorDataReceived += (_, e) => Line(e.Data);
        process.Exited += (_, _) => { lock (waits) foreach (var (w, _, s) in waits) s.TrySetException(new InvalidOperationException($"{Name} exited before printing {w}: {Output}")); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Name { get; }
    public int Pid => process.Id;
    public bool HasExited => process.HasExited;

    public string Output { get { lock (output) return output.Length > 16_000 ? output.ToString(output.Length - 16_000, 16_000) : output.ToString(); } }

    void Line(string? line)
    {
        if (line is null) return;
        lock (output) output.AppendLine(line);
        lock (waits) foreach (var (_, m, s) in waits) if (m(line)) s.TrySetResult(line);
    }

    public Task<string> WaitForLine(string prefix, TimeSpan timeout) =>
        WaitForLine(l => l.StartsWith(prefix, StringComparison.Ordinal), $"a line starting '{prefix}'", timeout);

    /// <summary>The first line (already printed or to come) that <paramref name="match"/> accepts; it completes as the line is read.</summary>
    public async Task<string> WaitForLine(Func<string, bool> match, string what, TimeSpan timeout)
    {
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (waits) waits.Add((what, match, seen));
        lock (output)
            foreach (var l in output.ToString().Split('\n'))
                if (match(l.TrimEnd('\r'))) seen.TrySetResult(l.TrimEnd('\r'));
        if (process.HasExited) seen.TrySetException(new InvalidOperationException($"{Name} exited ({process.ExitCode}): {Output}"));
        try { return await seen.Task.WaitAsync(timeout); }
        catch (TimeoutException) { throw new TimeoutException($"{Name} printed no {what} in {timeout.TotalSeconds:F0} s: {Output}"); }
    }

    public void Signal(string signal)
    {
        using var kill = Process.Start("kill", $"-{signal} {Pid}")!;
        kill.WaitForExit(5000);
    }

    bool disposed;

    /// <summary>Kills the process (after a SIGCONT, in case it was stopped); idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        if (disposed) return;
        disposed = true;
        if (!process.HasExited)
        {
            Signal("CONT");
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        process.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class MultiHostRig : ICollectionFixture<NetnsRig>
{
    public const string Name = "multi-host rig";
}

/// <summary>A fact that runs only where the rig can (root, iproute2, redis-server, prometheus); elsewhere it is skipped saying why.</summary>
public sealed class RigFactAttribute : FactAttribute
{
    public RigFactAttribute()
    {
        if (NetnsRig.Unavailable is { } why) Skip = why;
    }
}
