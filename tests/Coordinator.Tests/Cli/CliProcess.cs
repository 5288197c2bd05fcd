using System.Diagnostics;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>Runs the `jetpack` command line as a real process.</summary>
public static class CliProcess
{
    public static (int Code, string Output) Jetpack(params string[] args) => JetpackWith(new Dictionary<string, string?>(), args);

    /// <param name="environment">variables to set (null: remove) for this run only</param>
    public static (int Code, string Output) JetpackWith(IReadOnlyDictionary<string, string?> environment, params string[] args)
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
        string output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(5)), $"jetpack {string.Join(' ', args)} did not finish in 5 minutes");
        return (p.ExitCode, output + err.Result);
    }
}
