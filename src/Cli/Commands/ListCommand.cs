using System.CommandLine;
using Jetpack.Protocol.Jobs;
using Spectre.Console;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Cli.Commands;

/// <summary><c>jetpack list</c>: every job the coordinator knows, in submission order.</summary>
public static class ListCommand
{
    public static Command Create()
    {
        var cmd = new Command("list", "List the coordinator's jobs: id, phase, step, loss, last top-1, workers.");
        foreach (var o in JobClient.All) cmd.Add(o);
        cmd.SetAction((r, cancel) => Run(r, cancel));
        return cmd;
    }

    static async Task<int> Run(ParseResult r, CancellationToken cancel)
    {
        using var c = JobClient.Connect(r);
        var reply = await JobClient.Invoke(c, x => x.Client.ListAsync(new ListJobsRequest(), x.Call(cancel)).ResponseAsync);
        var table = new Table().AddColumns("job", "model", "phase", "step", "loss", "top-1", "workers", "message");
        foreach (var s in reply.Jobs)
            table.AddRow(Markup.Escape(s.JobId), Markup.Escape(s.Model), s.Phase.ToString().ToLowerInvariant(), $"{s.Step}/{s.TotalSteps}",
                         s.Step > 0 && !double.IsNaN(s.Loss) ? s.Loss.ToString("F4") : "–",
                         s.LastEval is { } e ? $"{100 * e.Top1:F2}% @{e.Step}" : "–", $"{s.Workers.Count}", Markup.Escape(s.Message));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"{reply.Jobs.Count} job(s)");
        return ExitCodes.Ok;
    }
}
