using System.Diagnostics;

namespace Jetpack.Coordinator.Tests.Support;

/// <summary>`jetpack coordinator` as a real process on free ports; its endpoints are read from its first lines.</summary>
public sealed class CoordinatorProcess : IDisposable
{
    readonly Process process;
    readonly System.Text.StringBuilder output = new();
    readonly TaskCompletionSource<(string Jobs, string Metrics)> endpoints = new(TaskCreationOptions.RunContinuationsAsynchronously);
    string? jobs;

    public string Jobs { get; }
    public string Metrics { get; }

    public CoordinatorProcess(string dataDir, params string[] extra) : this(dataDir, 0, FreePort.Next(), extra) { }

    /// <param name="port">the JobService port (0 = any; a fixed one lets workers find a restarted coordinator)</param>
    public CoordinatorProcess(string dataDir, int port, int siloPort, params string[] extra)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "jetpack.dll"));
        foreach (var a in new[] { "coordinator", "--port", port.ToString(), "--metrics-port", "0", "--silo-port", siloPort.ToString(), "--gateway-port", "0", "--data-dir", dataDir }.Concat(extra))
            psi.ArgumentList.Add(a);
        psi.Environment.Remove("JETPACK_CLUSTER_TOKEN"); // unset, not empty: an empty token is refused
        process = Process.Start(psi)!;
        process.OutputDataReceived += (_, e) => Line(e.Data);
        process.ErrorDataReceived += (_, e) => Line(e.Data);
        process.Exited += (_, _) => endpoints.TrySetException(new InvalidOperationException($"jetpack coordinator exited with {process.ExitCode}: {Output}"));
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!endpoints.Task.Wait(TimeSpan.FromSeconds(60))) throw new TimeoutException($"jetpack coordinator printed no endpoints in 60 s: {Output}");
        (Jobs, Metrics) = endpoints.Task.Result;
    }

    void Line(string? line)
    {
        if (line is null) return;
        lock (output) output.AppendLine(line);
        if (line.StartsWith("jobs: ", StringComparison.Ordinal)) jobs = line[6..];
        if (line.StartsWith("metrics: ", StringComparison.Ordinal) && jobs is not null) endpoints.TrySetResult((jobs, line[9..]));
    }

    public string Output { get { lock (output) return output.ToString(); } }

    public void Dispose()
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        process.WaitForExit(10_000);
        process.Dispose();
    }
}
