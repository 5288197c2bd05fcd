using System.CommandLine;
using Spectre.Console;

namespace Jetpack.Coordinator.Cli;

/// <summary>Runs the command line: user errors print one clear line and exit 2; coordinator errors
/// exit with the code of their gRPC status (<see cref="ExitCodes"/>); bugs print the stack and exit 1.</summary>
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
            return ExitCodes.Usage;
        }
        catch (Grpc.Core.RpcException e)
        {
            AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Status.Detail is { Length: > 0 } d ? d : e.Status.StatusCode.ToString())}");
            return ForStatus(e.StatusCode);
        }
    }

    public static int ForStatus(Grpc.Core.StatusCode code) => code switch
    {
        Grpc.Core.StatusCode.InvalidArgument or Grpc.Core.StatusCode.FailedPrecondition => ExitCodes.Usage,
        Grpc.Core.StatusCode.Unavailable or Grpc.Core.StatusCode.DeadlineExceeded => ExitCodes.Unavailable,
        Grpc.Core.StatusCode.NotFound => ExitCodes.NotFound,
        Grpc.Core.StatusCode.AlreadyExists => ExitCodes.Conflict,
        Grpc.Core.StatusCode.Unauthenticated or Grpc.Core.StatusCode.PermissionDenied => ExitCodes.Unauthenticated,
        _ => ExitCodes.Bug,
    };
}
