using System.CommandLine;
using Jetpack.WorkerCluster;
using Jetpack.Protocol.Security;
using Spectre.Console;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Cli.Commands;

/// <summary>
/// <c>jetpack start-workers N</c>: N jetpack-worker processes on this machine that join a
/// coordinator (register, heartbeat; the coordinator hands them runs). Started by the launcher
/// (readiness line + Health within a timeout, every worker's stderr on failure); they exit with
/// this command (Ctrl-C), since each watches its parent. The cluster token is the coordinator's.
/// </summary>
public static class StartWorkersCommand
{
    static readonly Argument<int> Count = new("count") { Description = "how many workers to start" };
    static readonly Option<string> Prefix = new("--worker-id-prefix") { Description = "worker i registers as PREFIX{i}", DefaultValueFactory = _ => Environment.MachineName + "-w" };
    static readonly Option<double> Heartbeat = new("--heartbeat-seconds") { Description = "seconds between heartbeats (well under the coordinator's --heartbeat-timeout)", DefaultValueFactory = _ => 3 };
    static readonly Option<double> Deadline = new("--deadline-seconds") { Description = "data-plane deadline of one exchange step", DefaultValueFactory = _ => 60 };

    public static Command Create()
    {
        var cmd = new Command("start-workers", "Start N jetpack-worker processes on this machine that join a coordinator; they run until this command stops (Ctrl-C).")
        {
            Count, Prefix, Heartbeat, Deadline, JobClient.Coordinator, JobClient.TokenFile, CommonOptions.Threads, CommonOptions.DataPlane,
        };
        cmd.SetAction((r, cancel) => Run(r, cancel));
        return cmd;
    }

    static async Task<int> Run(ParseResult r, CancellationToken cancel)
    {
        int count = r.GetValue(Count);
        if (count < 1) throw new ArgumentException($"count must be ≥ 1, got {count}");
        string address = r.GetValue(JobClient.Coordinator)!;
        if (!Uri.TryCreate(address, UriKind.Absolute, out var coordinator)) throw new ArgumentException($"--coordinator: '{address}' is not an absolute address");
        var token = JobClient.Token(r.GetValue(JobClient.TokenFile)) is { } t ? new ClusterToken(t)
            : throw new ArgumentException("workers need the coordinator's cluster token: --token-file or JETPACK_CLUSTER_TOKEN");
        await using var launcher = await WorkerLauncher.StartAsync(new LaunchOptions
        {
            WorldSize = count, Coordinator = coordinator, Token = token, WorkerIdPrefix = r.GetValue(Prefix)!,
            HeartbeatInterval = TimeSpan.FromSeconds(r.GetValue(Heartbeat)), StepDeadline = TimeSpan.FromSeconds(r.GetValue(Deadline)),
            ThreadsPerWorker = r.GetValue(CommonOptions.Threads), DataPlane = CommonOptions.ParseDataPlane(r.GetValue(CommonOptions.DataPlane)!),
        });
        foreach (var w in launcher.Workers)
            AnsiConsole.MarkupLine($"worker {Markup.Escape(r.GetValue(Prefix)! + w.Rank)}: pid {w.Pid}, http://{w.Address} → {Markup.Escape(address)}");
        AnsiConsole.MarkupLine($"{count} worker(s) joining {Markup.Escape(address)}; Ctrl-C stops them");
        var exited = Task.WhenAny(launcher.Workers.Select(w => w.Exited));
        try { await Task.WhenAny(exited, Task.Delay(Timeout.Infinite, cancel)); }
        catch (OperationCanceledException) { }
        if (exited.IsCompleted && !cancel.IsCancellationRequested)
        {
            Console.Error.WriteLine(launcher.Report());
            return ExitCodes.Bug;
        }
        return ExitCodes.Ok;
    }
}
