using System.CommandLine;
using Spectre.Console;

namespace Jetpack.Coordinator.Cli;

/// <summary>Runs the command line: user errors print one clear line and exit 2; bugs print the stack and exit 1.</summary>
public static class CliErrors
{
    public static int Run(RootCommand root, string[] args)
    {
        var parsed = root.Parse(args);
        try
        {
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is ArgumentException or FileNotFoundException or InvalidDataException or KeyNotFoundException or DirectoryNotFoundException
                                   or Jetpack.Model.Checkpoints.SafetensorsFormatException or Jetpack.Model.Checkpoints.CheckpointMismatchException
                                   or Jetpack.Model.Checkpoints.Pickle.TorchCheckpointException)
        {
            AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
            return 2;
        }
    }
}
