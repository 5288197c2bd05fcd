using Jetpack.GpuWorker.DataPlane;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Channels;

namespace Jetpack.GpuWorker.Hosting;

/// <summary>
/// <c>jetpack-worker --rank R --world N --peers h:p,h:p,... [--port P] [--token-file F] [--job ID]
/// [--deadline-seconds S] [--peer-timeout-seconds S] [--parent-pid PID] [--threads T] [--metrics-port P] [--data-plane grpc|grpc-pull|tcp] [--data-port P] [--tls-cert F --tls-key F --tls-ca F]</c> (a static cluster, the launcher's), or
/// <c>jetpack-worker --coordinator URL [--worker-id ID] [--port P] [--listen ADDR] [--advertise HOST]
/// [--heartbeat-seconds S] ...</c>: join a coordinator, which hands out rank, world and peers per run. The token comes from --token-file,
/// else JETPACK_CLUSTER_TOKEN, else JETPACK_CLUSTER_TOKEN_FILE; never from the command line itself
/// (process listings would show it).
/// </summary>
public static class WorkerCommandLine
{
    public const string Usage =
        "usage: jetpack-worker (--rank R --world N (--peers host:port,... | --port P) | --coordinator URL [--worker-id ID] [--advertise HOST] [--heartbeat-seconds S]) " +
        "[--port P] [--listen ADDR] [--token-file F] [--job ID] [--deadline-seconds S] [--peer-timeout-seconds S] [--parent-pid PID] [--threads T] [--metrics-port P] " +
        "[--data-plane tcp|grpc|grpc-pull (default tcp)] [--data-port P] [--chunk-bytes N (gRPC message size)] [--tls-cert F --tls-key F --tls-ca F [--metrics-tls true]]";

    public static WorkerOptions Parse(IReadOnlyList<string> args)
    {
        var values = new Dictionary<string, string>();
        string[] known = ["--rank", "--world", "--peers", "--port", "--token-file", "--job", "--deadline-seconds", "--peer-timeout-seconds", "--parent-pid", "--threads",
                           "--coordinator", "--worker-id", "--listen", "--advertise", "--heartbeat-seconds", "--metrics-port",
                           "--data-plane", "--data-port", "--chunk-bytes", "--tls-cert", "--tls-key", "--tls-ca", "--metrics-tls"];
        for (int i = 0; i < args.Count; i++)
        {
            // "--flag value" or "--flag=value" (as container manifests write them)
            int eq = args[i].IndexOf('=');
            string flag = eq > 0 ? args[i][..eq] : args[i];
            if (!known.Contains(flag)) throw new ArgumentException($"unknown argument '{flag}'\n{Usage}");
            if (eq > 0) { values[flag] = args[i][(eq + 1)..]; continue; }
            if (i + 1 >= args.Count) throw new ArgumentException($"{flag} needs a value\n{Usage}");
            values[flag] = args[++i];
        }
        int Int(string flag, int? fallback = null)
        {
            if (!values.TryGetValue(flag, out var v))
                return fallback ?? throw new ArgumentException($"{flag} is required\n{Usage}");
            return int.TryParse(v, out int x) ? x : throw new ArgumentException($"{flag}: '{v}' is not an integer");
        }
        var peers = values.TryGetValue("--peers", out var p) ? p.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) : null;
        foreach (var a in peers ?? []) WorkerOptions.ParsePort(a);
        double Seconds(string flag, double fallback) => values.TryGetValue(flag, out var d)
            ? (double.TryParse(d, System.Globalization.CultureInfo.InvariantCulture, out var s) && s > 0 ? s : throw new ArgumentException($"{flag}: '{d}' is not a positive number"))
            : fallback;
        double deadline = Seconds("--deadline-seconds", 60);
        CoordinatorLinkOptions? coordinator = null;
        if (values.TryGetValue("--coordinator", out var url))
        {
            if (values.ContainsKey("--peers") || values.ContainsKey("--rank") || values.ContainsKey("--world"))
                throw new ArgumentException($"--coordinator excludes --rank, --world and --peers: the coordinator assigns them per run\n{Usage}");
            if (!Uri.TryCreate(url, UriKind.Absolute, out var address)) throw new ArgumentException($"--coordinator: '{url}' is not an absolute address");
            coordinator = new CoordinatorLinkOptions
            {
                Address = address, WorkerId = values.GetValueOrDefault("--worker-id"), AdvertiseHost = values.GetValueOrDefault("--advertise"),
                HeartbeatInterval = TimeSpan.FromSeconds(Seconds("--heartbeat-seconds", Jetpack.Protocol.Control.LivenessDefaults.HeartbeatInterval.TotalSeconds)),
            };
        }
        else if (new[] { "--worker-id", "--advertise", "--heartbeat-seconds" }.FirstOrDefault(values.ContainsKey) is { } orphan)
            throw new ArgumentException($"{orphan} needs --coordinator\n{Usage}");
        var options = new WorkerOptions
        {
            Rank = coordinator is null ? Int("--rank") : 0,
            WorldSize = coordinator is null ? Int("--world") : 1,
            Peers = peers,
            Port = Int("--port", 0),
            MetricsPort = Int("--metrics-port", 0),
            JobId = values.GetValueOrDefault("--job", "job"),
            Token = ClusterToken.Resolve(values.GetValueOrDefault("--token-file")),
            Tls = ClusterTls.Resolve(values.GetValueOrDefault("--tls-cert"), values.GetValueOrDefault("--tls-key"), values.GetValueOrDefault("--tls-ca")),
            MetricsTls = values.TryGetValue("--metrics-tls", out var mt) && (bool.TryParse(mt, out bool m) ? m : throw new ArgumentException($"--metrics-tls: '{mt}' is not true or false")),
            DataPort = Int("--data-port", 0),
            // bytes per gRPC data-plane message (and the largest message accepted, plus room for a header)
            Limits = values.ContainsKey("--chunk-bytes") ? WireLimits.Default with { ChunkBytes = Int("--chunk-bytes") } : WireLimits.Default,
            Exchange = new ExchangeOptions
            {
                Deadline = TimeSpan.FromSeconds(deadline),
                Transport = values.TryGetValue("--data-plane", out var plane) ? DataPlaneTransports.Parse(plane, "--data-plane") : DataPlaneTransports.Default,
                Liveness = new LivenessOptions { Timeout = TimeSpan.FromSeconds(Seconds("--peer-timeout-seconds", new LivenessOptions().Timeout.TotalSeconds)) },
            },
            ParentPid = values.ContainsKey("--parent-pid") ? Int("--parent-pid") : null,
            Threads = Int("--threads", 0),
            ListenAddress = values.GetValueOrDefault("--listen", "127.0.0.1"),
            Coordinator = coordinator,
        };
        if (options.Peers is null && options.WorldSize > 1) throw new ArgumentException($"--peers is required for a world of {options.WorldSize}\n{Usage}");
        options.Validate();
        return options;
    }
}
