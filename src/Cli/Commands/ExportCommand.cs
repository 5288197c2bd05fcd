using System.CommandLine;
using Jetpack.Coordinator.Training;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Training;
using Jetpack.WorkerCluster;
using Jetpack.Protocol.Jobs;
using Spectre.Console;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Cli.Commands;

/// <summary>
/// <c>jetpack export JOB [--out F]</c>: the job's full model as one safetensors file — a copy of its
/// final.safetensors when it completed, else gathered from its newest complete training checkpoint
/// (a job still training, failed or cancelled; the step is said). The coordinator names the job's
/// output directory (Status); the files are read from this machine's filesystem (the embedded
/// default shares it). <c>jetpack export --checkpoint DIR --out F</c>: any training checkpoint directory.
/// </summary>
public static class ExportCommand
{
    static readonly Argument<string?> Job = new("job") { Description = "job id (asks the coordinator for its output directory)", Arity = ArgumentArity.ZeroOrOne };
    static readonly Option<string?> Checkpoint = new("--checkpoint") { Description = "a training checkpoint directory (manifest.json + safetensors of any world size) instead of a job" };
    static readonly Option<string?> Out = new("--out") { Description = "the model file to write (default for a job: ./JOB.safetensors; required with --checkpoint)" };

    public static Command Create()
    {
        var cmd = new Command("export", "Write a job's full model (final.safetensors, or its newest complete checkpoint while it trains or after it failed), or gather any training checkpoint directory (--checkpoint), as one safetensors file with timm-style names.")
        {
            Job, Checkpoint, Out,
        };
        foreach (var o in JobClient.All) cmd.Add(o);
        cmd.SetAction((r, cancel) => Run(r, cancel));
        return cmd;
    }

    static async Task<int> Run(ParseResult r, CancellationToken cancel)
    {
        string? job = r.GetValue(Job), checkpoint = r.GetValue(Checkpoint), output = r.GetValue(Out);
        if ((job is null) == (checkpoint is null)) throw new ArgumentException("give a job id or --checkpoint DIR (one of them)");
        if (checkpoint is not null)
        {
            if (output is null) throw new ArgumentException("--out is required with --checkpoint");
            if (!Directory.Exists(checkpoint)) throw new DirectoryNotFoundException($"--checkpoint: directory not found: {checkpoint}");
            var m = FinalModel.Write(checkpoint, output);
            AnsiConsole.MarkupLine(Markup.Escape($"wrote {output}: {m.Variant}, step {m.Step} (gathered from {checkpoint}, saved by {m.WorldSize} rank(s))"));
            return ExitCodes.Ok;
        }

        using var c = JobClient.Connect(r);
        var s = await JobClient.Invoke(c, x => x.Client.GetStatusAsync(new JobRequest { JobId = job }, x.Call(cancel)).ResponseAsync);
        output ??= job + ".safetensors";
        if (s.FinalModel.Length > 0 && File.Exists(s.FinalModel))
        {
            CopyAtomically(s.FinalModel, output);
            AnsiConsole.MarkupLine(Markup.Escape($"wrote {output}: job {job}'s final model (step {s.TotalSteps}, copied from {s.FinalModel})"));
            return ExitCodes.Ok;
        }
        string dir = Path.Combine(s.OutDirectory, "checkpoint");
        var found = CheckpointLocator.Latest(dir)
            ?? throw new InvalidDataException(s.OutDirectory.Length == 0 || !Directory.Exists(s.OutDirectory)
                ? $"job {job}: its output directory '{s.OutDirectory}' is not on this machine (export runs where the coordinator's files are)"
                : $"job {job} ({s.Phase.ToString().ToLowerInvariant()}): no complete training checkpoint in {dir} yet");
        FinalModel.Write(found.Directory, output, job, eval: s.LastEval is { } e ? new EvalResult(e.Loss, e.Top1, e.Top5, e.Images) { Step = e.Step } : null);
        AnsiConsole.MarkupLine(Markup.Escape($"wrote {output}: job {job} is {s.Phase.ToString().ToLowerInvariant()}; " +
                                             $"from its newest complete checkpoint, step {found.Manifest.Step} of {s.TotalSteps} ({found.Directory})"));
        return ExitCodes.Ok;
    }

    /// <summary>A copy under a temporary name, then a rename: a reader never sees half a model.</summary>
    static void CopyAtomically(string from, string to)
    {
        string tmp = $"{to}.tmp-{Environment.ProcessId}";
        File.Copy(from, tmp, overwrite: true);
        File.Move(tmp, to, overwrite: true);
    }
}
