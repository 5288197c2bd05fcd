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
    static readonly Option<int> Workers = new("--workers") { Description = "train with expert parallelism in N jetpack-worker processes on loopback (0 = in this process)", DefaultValueFactory = _ => 0 };

    public static Command Create()
    {
        var cmd = new Command("train", "Train a registered model (dense, Soft MoE or MoE Jetpack) from scratch or from a checkpoint (e.g. a recycled one), with the spec §7 recipe.")
        {
            Config, Resume, Until, Workers, CommonOptions.DataPlane, CommonOptions.Device, CommonOptions.Threads,
        };
        cmd.SetAction(r => r.GetValue(Workers) switch
        {
            < 0 => throw new ArgumentException($"--workers must be ≥ 0 (got {r.GetValue(Workers)})"),
            0 => LocalTraining.Run(Load(r.GetValue(Config)!), r.GetValue(Resume), r.GetValue(Until),
                     Devices.Parse(r.GetValue(CommonOptions.Device)!), r.GetValue(CommonOptions.Threads)),
            int n => TrainWorkers.Run(Load(r.GetValue(Config)!), r.GetValue(Resume), r.GetValue(Until), n,
                                      r.GetValue(CommonOptions.Device)!, r.GetValue(CommonOptions.Threads),
                                      dataPlane: CommonOptions.ParseDataPlane(r.GetValue(CommonOptions.DataPlane)!)),
        });
        return cmd;
    }

    /// <summary>Reads a YAML (.yaml/.yml) or JSON run spec in the job-spec dialect (snake_case, unknown fields are errors naming the field), then validates it.</summary>
    public static RunSpec Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config not found: {path}", path);
        var config = JobSpecReader.ParseAs<RunSpec>(File.ReadAllText(path), JobSpecReader.FormatOf(path), path, RunSpec.FieldsHint);
        config.Validate(path);
        return config with { Out = config.Out ?? RunSpec.DefaultOut };
    }
}
