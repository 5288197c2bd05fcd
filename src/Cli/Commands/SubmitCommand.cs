using System.CommandLine;
using Jetpack.Coordinator.Jobs;
using Jetpack.Protocol.Jobs;
using Spectre.Console;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Cli.Commands;

/// <summary><c>jetpack submit JOB.yaml</c>: validates a job spec locally, then submits it to the coordinator.</summary>
public static class SubmitCommand
{
    static readonly Argument<string> Spec = new("spec") { Description = "job spec file (.yaml/.yml or .json)" };
    static readonly Option<string?> Id = new("--id") { Description = "job id (default: the spec's name); submitting the same spec again is a no-op" };
    static readonly Option<bool> DryRun = new("--dry-run") { Description = "only validate the spec" };

    public static Command Create()
    {
        var cmd = new Command("submit", "Submit a job (YAML or JSON spec: name, model, workers, recycle, data, recipe). The spec is validated first; errors name the field.") { Spec, Id, DryRun };
        foreach (var o in JobClient.All) cmd.Add(o);
        cmd.SetAction((r, cancel) => Run(r, cancel));
        return cmd;
    }

    static async Task<int> Run(ParseResult r, CancellationToken cancel)
    {
        string path = r.GetValue(Spec)!;
        var spec = JobSpecReader.Load(path);
        if (r.GetValue(DryRun))
        {
            AnsiConsole.MarkupLine($"{Markup.Escape(path)}: valid (job '{Markup.Escape(spec.Name)}', {Markup.Escape(spec.Model)}, {spec.Workers} worker(s), {spec.Recipe.Steps} steps)");
            return ExitCodes.Ok;
        }
        using var c = JobClient.Connect(r);
        var request = new SubmitJobRequest
        {
            // The parsed spec with absolute paths, as JSON: the coordinator validates it again.
            SpecText = JobSpecReader.ToJson(spec), Format = "json", Source = Path.GetFileName(path), JobId = r.GetValue(Id) ?? "",
        };
        var status = await JobClient.Invoke(c, x => x.Client.SubmitAsync(request, x.Call(cancel)).ResponseAsync);
        AnsiConsole.MarkupLine($"submitted: {Markup.Escape(JobClient.Describe(status))}");
        return ExitCodes.Ok;
    }
}
