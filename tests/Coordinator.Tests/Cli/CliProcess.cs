using System.Diagnostics;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>Runs the `jetpack` command line as a real process.</summary>
public static class CliProcess
{
    public static (int Code, string Output) Jetpack(params string[] args) => JetpackWith(new Dictionary<string, string?>(), args);

    /// <summary>A hang guard for every command a test runs, not a speed check: the study's and the demo's smoke
    /// runs take 1–2 minutes idle and over 5 on a loaded 2-core CI machine (both were cut at 5 minutes).</summary>
    public static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(15);

    /// <param name="environment">variables to set (null: remove) for this run only</param>
    public static (int Code, string Output) JetpackWith(IReadOnlyDictionary<string, string?> environment, params string[] args) =>
        JetpackWithin(HangGuard, environment, args);

    /// <summary>Runs jetpack; a run longer than <paramref name="timeout"/> is killed (with its worker processes) and fails the test.</summary>
    public static (int Code, string Output) JetpackWithin(TimeSpan timeout, IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "jetpack.dll");
        Assert.True(File.Exists(dll), $"{dll} missing");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["COLUMNS"] = "200";
        foreach (var (name, value) in environment)
            if (value is null) psi.Environment.Remove(name);
            else psi.Environment[name] = value;
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            Assert.Fail($"jetpack {string.Join(' ', args)} did not finish in {timeout.TotalMinutes:0.#} minutes:\n{output.Result}{err.Result}");
        }
        p.WaitForExit();                                                       // the redirected streams drain
        return (p.ExitCode, output.Result + err.Result);
    }
}
