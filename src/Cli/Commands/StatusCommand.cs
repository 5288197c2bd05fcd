using System.CommandLine;
using Jetpack.Protocol.Jobs;
using Spectre.Console;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Cli.Commands;

/// <summary><c>jetpack status JOB</c>: one job's phase, progress, workers and checkpoint.</summary>
public static class StatusCommand
{
    static readonly Argument<string> Job = new("job") { Description = "job id" };

    public static Command Create()
    {
        var cmd = new Command("status", "Show a job's phase, step, loss, images/s, last evaluation (top-1, top-5, eval loss), workers, recoveries, recycled checkpoint and final model.") { Job };
        foreach (var o in JobClient.All) cmd.Add(o);
        cmd.SetAction((r, cancel) => Run(r, cancel));
        return cmd;
    }

    static async Task<int> Run(ParseResult r, CancellationToken cancel)
    {
        using var c = JobClient.Connect(r);
        var s = await JobClient.Invoke(c, x => x.Client.GetStatusAsync(new JobRequest { JobId = r.GetValue(Job) }, x.Call(cancel)).ResponseAsync);
        var grid = new Grid().AddColumns(2);
        void Row(string k, string v) => grid.AddRow(new Text(k), new Text(v));
        Row("job", s.JobId);
        Row("name", s.Name);
        Row("model", s.Model);
        Row("phase", s.Phase.ToString().ToLowerInvariant());
        if (s.Message.Length > 0) Row("message", s.Message);
        Row("step", $"{s.Step}/{s.TotalSteps}");
        Row("loss", s.Step > 0 && !double.IsNaN(s.Loss) ? s.Loss.ToString("F4") : "–");
        Row("images/s", s.ImagesPerSecond > 0 ? s.ImagesPerSecond.ToString("F1") : "–");
        Row("evaluation", s.LastEval is { } e ? JobClient.Evaluation(e) : "–");
        Row("workers", s.Workers.Count > 0 ? string.Join(", ", s.Workers) : "–");
        Row("recoveries", s.Recoveries.ToString());
        Row("checkpoint", s.CheckpointPath.Length > 0 ? $"{s.CheckpointPath}{(s.CheckpointReused ? " (reused)" : "")}" : "–");
        Row("output", s.OutDirectory.Length > 0 ? s.OutDirectory : "–");
        Row("final model", s.FinalModel.Length > 0 ? s.FinalModel : "–");
        Row("checkpoint key", s.CheckpointKey.Length > 0 ? s.CheckpointKey : "–");
        Row("submitted", DateTimeOffset.FromUnixTimeMilliseconds(s.SubmittedUnixMs).ToString("u"));
        Row("updated", DateTimeOffset.FromUnixTimeMilliseconds(s.UpdatedUnixMs).ToString("u"));
        AnsiConsole.Write(grid);
        return ExitCodes.Ok;
    }
}
