using Jetpack.GpuWorker.DataPlane;
using Jetpack.Protocol.Security;

namespace Jetpack.GpuWorker.Hosting;

/// <summary>
/// <c>jetpack-worker --rank R --world N --peers h:p,h:p,... [--port P] [--token-file F] [--job ID]
/// [--deadline-seconds S] [--parent-pid PID] [--threads T] [--metrics-port P]</c>. The token comes from --token-file,
/// else JETPACK_CLUSTER_TOKEN, else JETPACK_CLUSTER_TOKEN_FILE; never from the command line itself
/// (process listings would show it).
/// </summary>
public static class WorkerCommandLine
{
    public const string Usage =
        "usage: jetpack-worker --rank R --world N (--peers host:port,... | --port P) [--token-file F] [--job ID] " +
        "[--deadline-seconds S] [--parent-pid PID] [--threads T] [--metrics-port P]";

    public static WorkerOptions Parse(IReadOnlyList<string> args)
    {
        var values = new Dictionary<string, string>();
        string[] known = ["--rank", "--world", "--peers", "--port", "--token-file", "--job", "--deadline-seconds", "--parent-pid", "--threads", "--metrics-port"];
        for (int i = 0; i < args.Count; i++)
        {
            if (!known.Contains(args[i])) throw new ArgumentException($"unknown argument '{args[i]}'\n{Usage}");
            if (i + 1 >= args.Count) throw new ArgumentException($"{args[i]} needs a value\n{Usage}");
            values[args[i]] = args[++i];
        }
        int Int(string flag, int? fallback = null)
        {
            if (!values.TryGetValue(flag, out var v))
                return fallback ?? throw new ArgumentException($"{flag} is required\n{Usage}");
            return int.TryParse(v, out int x) ? x : throw new ArgumentException($"{flag}: '{v}' is not an integer");
        }
        var peers = values.TryGetValue("--peers", out var p) ? p.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) : null;
        foreach (var a in peers ?? []) WorkerOptions.ParsePort(a);
        double deadline = values.TryGetValue("--deadline-seconds", out var d)
            ? (double.TryParse(d, System.Globalization.CultureInfo.InvariantCulture, out var s) && s > 0 ? s : throw new ArgumentException($"--deadline-seconds: '{d}' is not a positive number"))
            : 60;
        var options = new WorkerOptions
        {
            Rank = Int("--rank"),
            WorldSize = Int("--world"),
            Peers = peers,
            Port = Int("--port", 0),
            MetricsPort = Int("--metrics-port", 0),
            JobId = values.GetValueOrDefault("--job", "job"),
            Token = ClusterToken.Resolve(values.GetValueOrDefault("--token-file")),
            Exchange = new ExchangeOptions { Deadline = TimeSpan.FromSeconds(deadline) },
            ParentPid = values.ContainsKey("--parent-pid") ? Int("--parent-pid") : null,
            Threads = Int("--threads", 0),
        };
        if (options.Peers is null && options.WorldSize > 1) throw new ArgumentException($"--peers is required for a world of {options.WorldSize}\n{Usage}");
        options.Validate();
        return options;
    }
}
