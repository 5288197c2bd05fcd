using System.CommandLine;
using Jetpack.Cli.Commands;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>Issue 12: README's exit-code table holds for every command — input problems exit 2 with a named
/// error, never 1 (bugs) or an abort (134).</summary>
public sealed class ExitCodeTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Theory]
    [InlineData("submit")]                       // missing argument
    [InlineData("no-such-command")]
    [InlineData("list", "--timeout", "soon")]    // not a number
    public void AParseErrorExits2(params string[] args)
    {
        var (code, output) = CliProcess.Jetpack(args);
        Assert.True(code == ExitCodes.Usage, $"exit {code}: {output}");
        Assert.Contains("error:", output);
        Assert.Contains("--help", output);
    }

    [Theory]
    [InlineData("deep.yaml", "nested deeper than 64 levels")]
    [InlineData("cyclic.yaml", "anchors (&a)")]
    public void AHostileSpecFailsDryRunWithExit2NotAnAbort(string name, string problem)
    {
        string path = dir.File(name);
        File.WriteAllText(path, name == "deep.yaml" ? "name: deep\nx: " + new string('[', 100_000) + "\n" : "name: cyc\nx: &a [*a]\n");
        var (code, output) = CliProcess.Jetpack("submit", "--dry-run", path);
        Assert.True(code == ExitCodes.Usage, $"exit {code}: {output}");
        Assert.Contains(problem, output);
        Assert.Contains(name, output);
    }

    [Fact]
    public void AnEmptyTokenFileIsRefusedAtStart()
    {
        string empty = dir.File("empty.token");
        File.WriteAllText(empty, " \n");
        var none = new Dictionary<string, string?> { ["JETPACK_CLUSTER_TOKEN"] = null };
        var (code, output) = CliProcess.JetpackWith(none, "coordinator", "--token-file", empty, "--data-dir", dir.File("data"), "--port", "0", "--metrics-port", "0",
                                                    "--silo-port", FreePort.Next().ToString(), "--gateway-port", "0");
        Assert.True(code == ExitCodes.Usage, $"exit {code}: {output}");
        Assert.Contains($"--token-file {empty}: the cluster token is empty", output);
        Assert.DoesNotContain("jobs: ", output);                 // it never listened
        (code, output) = CliProcess.JetpackWith(none, "list", "--token-file", empty, "--coordinator", "http://127.0.0.1:1");
        Assert.True(code == ExitCodes.Usage, $"exit {code}: {output}");
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("short")]
    public void ABlankOrShortTokenVariableIsRefusedNamingIt(string value)
    {
        var env = new Dictionary<string, string?> { ["JETPACK_CLUSTER_TOKEN"] = value };
        var (code, output) = CliProcess.JetpackWith(env, "list", "--coordinator", "http://127.0.0.1:1");
        Assert.True(code == ExitCodes.Usage, $"exit {code}: {output}");
        Assert.Contains("JETPACK_CLUSTER_TOKEN: ", output);
    }

    static RootCommand Synthetic(Action<string> action)
    {
        var output = new Option<string>("--out");
        var command = new Command("write") { output };
        command.SetAction(r => { action(r.GetValue(output)!); return 0; });
        return new RootCommand("test") { command };
    }

    [Fact]
    public void AnUnwritableOutputExits2NamingTheOption()
    {
        string target = dir.File("no-dir/sub/file.json");
        int code = CliErrors.Run(Synthetic(p => throw new UnauthorizedAccessException($"Access to the path '{Path.GetFullPath(p)}' is denied.")), ["write", "--out", target]);
        Assert.Equal(ExitCodes.Usage, code);
        var io = new IOException($"No space left on device : '{target}'");
        Assert.Equal($"cannot write --out {target}: {io.Message}", CliErrors.Describe(io, Synthetic(_ => { }).Parse(["write", "--out", target])));
        Assert.Equal(ExitCodes.Usage, CliErrors.Run(Synthetic(p => File.WriteAllText(Path.Combine(p, "x"), "")), ["write", "--out", dir.File("missing/dir")]));
    }

    [Fact]
    public void ABugExits1WithItsStackNotAnAbort() =>
        Assert.Equal(ExitCodes.Bug, CliErrors.Run(Synthetic(_ => throw new InvalidOperationException("a bug")), ["write", "--out", "x"]));
}
