using System.CommandLine;
using Jetpack.Protocol.Jobs;
using Spectre.Console;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Cli.Commands;

/// <summary><c>jetpack workers</c>: the coordinator's worker pool (liveness, heartbeat age, assignment).</summary>
public static class WorkersCommand
{
    public static Command Create()
    {
        var cmd = new Command("workers", "List the workers known to the coordinator: endpoint, slots, alive, heartbeat age, job and rank.");
        foreach (var o in JobClient.All) cmd.Add(o);
        cmd.SetAction((r, cancel) => Run(r, cancel));
        return cmd;
    }

    static async Task<int> Run(ParseResult r, CancellationToken cancel)
    {
        using var c = JobClient.Connect(r);
        var registry = new WorkerRegistry.WorkerRegistryClient(c.Invoker);   // with the token: on the bare channel a coordinator with a token refused the list
        var reply = await JobClient.Invoke(c, x => registry.ListWorkersAsync(new ListWorkersRequest(), x.Call(cancel)).ResponseAsync);
        var table = new Table().AddColumns("worker", "endpoint", "slots", "alive", "heartbeat age", "job", "rank");
        foreach (var w in reply.Workers)
            table.AddRow(Markup.Escape(w.WorkerId), Markup.Escape(w.Endpoint), $"{w.Slots}", w.Alive ? "yes" : "[red]no[/]", $"{w.HeartbeatAgeSeconds:F1} s",
                         Markup.Escape(w.JobId.Length > 0 ? w.JobId : "–"), w.JobId.Length > 0 ? $"{w.Rank}" : "–");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"{reply.Workers.Count} worker(s), {reply.Workers.Count(w => w.Alive)} alive");
        return ExitCodes.Ok;
    }
}
