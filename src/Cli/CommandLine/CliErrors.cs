using System.CommandLine;
using System.CommandLine.Parsing;
using Spectre.Console;

namespace Jetpack.Cli.CommandLine;

/// <summary>Runs the command line so that every command keeps README's exit-code table (<see cref="ExitCodes"/>):
/// a bad command line or input prints one clear line and exits 2; coordinator errors exit with the code of
/// their gRPC status; anything else is a bug: the stack is printed and the exit code is 1 (never an abort).</summary>
public static class CliErrors
{
    public static int Run(RootCommand root, string[] args)
    {
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // System.CommandLine would exit 1, which README reserves for bugs.
            foreach (var error in parsed.Errors) AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(error.Message)}");
            AnsiConsole.MarkupLine($"see: jetpack {Markup.Escape(string.Join(' ', CommandPath(parsed.CommandResult)))} --help");
            return ExitCodes.Usage;
        }
        try
        {
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (IsInputProblem(e))
        {
            AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(Describe(e, parsed))}");
            return ExitCodes.Usage;
        }
        catch (Grpc.Core.RpcException e)
        {
            AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(e.Status.Detail is { Length: > 0 } d ? d : e.Status.StatusCode.ToString())}");
            return ForStatus(e.StatusCode);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Unhandled, the runtime would abort (exit 134) without saying which command failed.
            Console.Error.WriteLine($"bug: jetpack {string.Join(' ', args)}: {e}");
            return ExitCodes.Bug;
        }
    }

    /// <summary>Errors caused by what the user gave: a file, a path, an option or a spec field.</summary>
    public static bool IsInputProblem(Exception e) =>
        e is ArgumentException or IOException or UnauthorizedAccessException or InvalidDataException or KeyNotFoundException
            or Jetpack.Model.Checkpoints.SafetensorsFormatException or Jetpack.Model.Checkpoints.CheckpointMismatchException
            or Jetpack.Model.Checkpoints.Pickle.TorchCheckpointException;

    /// <summary>The message; a file-system error also names the option whose path it was (e.g. "cannot write --out X: …").</summary>
    public static string Describe(Exception e, ParseResult parsed)
    {
        if (e is not (IOException or UnauthorizedAccessException) || e is FileNotFoundException) return e.Message;
        foreach (var option in parsed.CommandResult.Children.OfType<OptionResult>())
            if (option.Tokens.Count == 1 && option.Tokens[0].Value is { Length: > 0 } value && NamesPath(e.Message, value))
                return $"cannot {(option.Option.Name.Contains("out", StringComparison.Ordinal) ? "write" : "use")} {option.Option.Name} {value}: {e.Message}";
        return "file error: " + e.Message;
    }

    static bool NamesPath(string message, string value)
    {
        try { return message.Contains(value, StringComparison.Ordinal) || message.Contains(Path.GetFullPath(value), StringComparison.Ordinal); }
        catch (Exception e) when (e is ArgumentException or IOException or NotSupportedException) { return false; }
    }

    static IEnumerable<string> CommandPath(SymbolResult? result)
    {
        var names = new Stack<string>();
        for (var r = result as CommandResult; r?.Parent is CommandResult parent; r = parent) names.Push(r.Command.Name);
        return names;
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
