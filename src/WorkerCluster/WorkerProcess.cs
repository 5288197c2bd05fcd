using System.Diagnostics;
using System.Text;
using Jetpack.Protocol.Control;

namespace Jetpack.WorkerCluster;

/// <summary>One started worker process: its rank, address, readiness, exit code and the tail of its stderr.</summary>
public sealed class WorkerProcess : IDisposable
{
    private const int TailChars = 16 << 10;
    private readonly Process process;
    private readonly StringBuilder stderr = new();
    private readonly TaskCompletionSource ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<int> exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public WorkerProcess(int rank, string address, ProcessStartInfo psi)
    {
        Rank = rank; Address = address;
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            if (e.Data.StartsWith(WorkerReadiness.Prefix, StringComparison.Ordinal))
            {
                MetricsAddress = WorkerReadiness.Field(e.Data, "metrics");
                ready.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stderr)
            {
                stderr.AppendLine(e.Data);
                if (stderr.Length > TailChars) stderr.Remove(0, stderr.Length - TailChars);
            }
        };
        process.Exited += (_, _) =>
        {
            // the exit event can precede the last stderr lines: wait for the streams to drain
            try { process.WaitForExit(); } catch (InvalidOperationException) { }
            exited.TrySetResult(process.ExitCode);
        };
        process.Start();
        Pid = process.Id;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Rank { get; }
    public string Address { get; }
    public int Pid { get; }
    /// <summary>host:port of the worker's /metrics (from its readiness line), once <see cref="Ready"/>.</summary>
    public string? MetricsAddress { get; private set; }
    public Task Ready => ready.Task;
    public Task<int> Exited => exited.Task;
    public bool HasExited => exited.Task.IsCompleted;

    public string StandardError
    {
        get { lock (stderr) return stderr.ToString(); }
    }

    /// <summary>Kills the process (and its children) if it still runs; returns when it has exited.</summary>
    public async Task KillAsync(TimeSpan timeout)
    {
        if (!HasExited)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { /* exited meanwhile */ }
        }
        await Exited.WaitAsync(timeout);
    }

    public void Dispose() => process.Dispose();
}
