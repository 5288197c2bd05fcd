using System.CommandLine;
using Jetpack.Cli.Commands;
using Jetpack.Cli.CommandLine;

Jetpack.Model.Torch.TorchRuntime.Configure(); // before any tensor exists
if (Console.IsOutputRedirected) Spectre.Console.AnsiConsole.Profile.Width = 160; // logs and pipes: don't wrap tables at 80

// The `jetpack` command line: model commands (models, smoke, profile, recycle, train, bench), the
// coordinator, and the commands that talk to it (submit, status, watch, cancel, list, workers).
var root = new RootCommand("jetpack — turn dense vision checkpoints into Mixture-of-Experts models (MoE Jetpack) and train them.")
{
    ModelsCommand.Create(),
    SmokeCommand.Create(),
    ProfileCommand.Create(),
    RecycleCommand.Create(),
    TrainCommand.Create(),
    Jetpack.Cli.Study.StudyCommand.Create(),
    Jetpack.Cli.Demo.DemoCommand.Create(),
    Jetpack.Cli.Bench.BenchCommand.Create(),
    CoordinatorCommand.Create(),
    SubmitCommand.Create(),
    StatusCommand.Create(),
    WatchCommand.Create(),
    CancelCommand.Create(),
    ListCommand.Create(),
    WorkersCommand.Create(),
    StartWorkersCommand.Create(),
    ExportCommand.Create(),
    EvalCommand.Create(),
};
return CliErrors.Run(root, args);
