using System.CommandLine;
using Spectre.Console;
using TorchSharp;
using Jetpack.Application.Runs;
using Jetpack.Application.Training;
using Jetpack.Coordinator.Jobs;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Registry;
using Jetpack.Model.Torch;
using Jetpack.Model.Training;
using Jetpack.Cli.CommandLine;
using Jetpack.Cli.Runs;

namespace Jetpack.Cli.Commands;

/// <summary>
/// <c>jetpack train --config FILE</c>: the single-process trainer with a live progress bar, metrics as
/// JSON lines, periodic checkpoints, exact resume (<c>--resume</c>) and a convergence plot.
/// </summary>
public static class TrainCommand
{
    static readonly Option<string> Config = new("--config") { Description = "training config (YAML or JSON; see README for the fields)", Required = true };
    static readonly Option<bool> Resume = new("--resume") { Description = "continue from <out>/checkpoint (exactly: same batches, augmentation, dropout, noise)" };
    static readonly Option<long?> Until = new("--until") { Description = "stop after this step (checkpoint written); continue later with --resume" };
    static readonly Option<string?> Model = new("--model") { Description = "train this model instead of the config's model: " + ModelArgument.Help };
    static readonly Option<int> Workers = new("--workers") { Description = "train with expert parallelism in N jetpack-worker processes on loopback (0 = in this process)", DefaultValueFactory = _ => 0 };

    public static Command Create()
    {
        var cmd = new Command("train", "Train a model (a registered variant or any expert configuration from a mapping: dense, Soft MoE or MoE Jetpack) from scratch or from a checkpoint (e.g. a recycled one), with the spec §7 recipe.")
        {
            Config, Model, Resume, Until, Workers, CommonOptions.DataPlane, CommonOptions.Device, CommonOptions.Threads,
            TlsOptions.Cert, TlsOptions.Key, TlsOptions.Ca,
        };
        cmd.SetAction(r =>
        {
            if (r.GetValue(Workers) < 0) throw new ArgumentException($"--workers must be ≥ 0 (got {r.GetValue(Workers)})");
            var config = Load(r.GetValue(Config)!, r.GetValue(Model));
            // --device given wins; else the config's device; else --device's default ($JETPACK_DEVICE, else cpu)
            string device = r.GetResult(CommonOptions.Device) is { Implicit: false } || config.Device is null ? r.GetValue(CommonOptions.Device)! : config.Device;
            return r.GetValue(Workers) switch
            {
                0 => LocalTraining.Run(config, r.GetValue(Resume), r.GetValue(Until), Devices.Parse(device), r.GetValue(CommonOptions.Threads)),
                int n => TrainWorkers.Run(config, r.GetValue(Resume), r.GetValue(Until), n, device, r.GetValue(CommonOptions.Threads),
                                          dataPlane: CommonOptions.ParseDataPlane(r.GetValue(CommonOptions.DataPlane)!), tls: TlsOptions.Resolve(r)),
            };
        });
        return cmd;
    }

    /// <summary>Reads a YAML (.yaml/.yml) or JSON run spec in the job-spec dialect (snake_case, unknown fields are errors naming the field), then validates it.</summary>
    /// <param name="model">a <c>--model</c> that replaces the config's model (name, mapping or file)</param>
    public static RunSpec Load(string path, string? model = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config not found: {path}", path);
        var config = JobSpecReader.ParseAs<RunSpec>(File.ReadAllText(path), JobSpecReader.FormatOf(path), path, RunSpec.FieldsHint);
        config = config with
        {
            Model = model is not null ? ModelArgument.Parse(model) : ModelArgument.Inline(config.Model, Path.GetDirectoryName(Path.GetFullPath(path))!, path),
        };
        config.Validate(path);
        return config with { Out = config.Out ?? RunSpec.DefaultOut };
    }
}
