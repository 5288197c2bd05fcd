using System.CommandLine;
using Jetpack.Protocol.Jobs;
using Spectre.Console;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Cli.Commands;

/// <summary><c>jetpack cancel JOB</c>: idempotent; an ended job is shown unchanged.</summary>
public static class CancelCommand
{
    static readonly Argument<string> Job = new("job") { Description = "job id" };

    public static Command Create()
    {
        var cmd = new Command("cancel", "Cancel a job (releases its workers). Cancelling an ended job changes nothing.") { Job };
        foreach (var o in JobClient.All) cmd.Add(o);
        cmd.SetAction((r, cancel) => Run(r, cancel));
        return cmd;
    }

    static async Task<int> Run(ParseResult r, CancellationToken cancel)
    {
        using var c = JobClient.Connect(r);
        var s = await JobClient.Invoke(c, x => x.Client.CancelAsync(new JobRequest { JobId = r.GetValue(Job) }, x.Call(cancel)).ResponseAsync);
        AnsiConsole.MarkupLine(Markup.Escape(JobClient.Describe(s)));
        return ExitCodes.Ok;
    }
}
