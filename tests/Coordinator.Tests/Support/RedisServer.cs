using System.Diagnostics;
using System.Text;

namespace Jetpack.Coordinator.Tests.Support;

/// <summary>
/// A real Debian redis-server on loopback: random port, its own temp directory. By default no
/// persistence to disk (the tests restart the coordinator, not Redis); <c>persistent</c> runs it as
/// deploy/k8s does, with the append-only file (fsync on every write here), so that <see cref="Kill"/> and
/// <see cref="StartAgain"/> (same port and directory) lose nothing it acknowledged. With <c>netns</c> it runs
/// inside that network namespace (<c>ip netns exec</c> execs in place, so the pid is redis-server's), on that
/// namespace's loopback: the multi-host rig's Redis beside its coordinator (<c>MultiHost.NetnsRig</c>).
/// Needs the apt package redis-server (scripts/setup.sh installs it).
/// </summary>
public sealed class RedisServer : IDisposable
{
    const string Binary = "/usr/bin/redis-server";
    const string Cli = "/usr/bin/redis-cli";
    Process process;
    readonly TempDir dir = new();
    readonly bool persistent;
    readonly string? netns;
    readonly StringBuilder output = new();
    public int Port { get; }
    /// <summary>The address to give a client in the same network namespace.</summary>
    public string Configuration => $"127.0.0.1:{Port}";
    /// <summary>Whether redis-server runs (false between <see cref="Kill"/> and <see cref="StartAgain"/>).</summary>
    public bool Running => !process.HasExited;

    public RedisServer(bool persistent = false, string? netns = null)
    {
        Assert.True(File.Exists(Binary), $"{Binary} missing: run scripts/setup.sh (apt package redis-server)");
        (this.persistent, this.netns) = (persistent, netns);
        // a fresh namespace has nothing bound, so a port free on the host is free there too
        Port = FreePort.Next();
        process = Start();
        WaitForPong();
    }

    /// <summary>The program and arguments that run <paramref name="args"/> in this server's namespace (if any).</summary>
    ProcessStartInfo InNamespace(string program, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(netns is null ? program : "ip") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir.Path };
        foreach (var a in (netns is null ? [] : new[] { "netns", "exec", netns, program }).Concat(args)) psi.ArgumentList.Add(a);
        return psi;
    }

    Process Start()
    {
        string[] persistence = persistent ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"];
        var started = new Process { StartInfo = InNamespace(Binary, new[] { "--port", Port.ToString(), "--bind", "127.0.0.1", "--dir", dir.Path, "--save", "", "--protected-mode", "yes" }.Concat(persistence)) };
        // read both pipes: a full pipe would stall redis-server on its next log line
        started.OutputDataReceived += (_, e) => Log(e.Data);
        started.ErrorDataReceived += (_, e) => Log(e.Data);
        started.Start();
        started.BeginOutputReadLine();
        started.BeginErrorReadLine();
        return started;
    }

    void Log(string? line)
    {
        if (line is null) return;
        lock (output) { output.AppendLine(line); if (output.Length > 8_000) output.Remove(0, output.Length - 8_000); }
    }

    /// <summary>Kills redis-server (SIGKILL: a crash, not a shutdown that could save).</summary>
    public void Kill()
    {
        process.Kill(entireProcessTree: true);
        Assert.True(process.WaitForExit(10_000), $"redis-server on port {Port} did not exit in 10 s after SIGKILL");
    }

    /// <summary>Starts redis-server again after <see cref="Kill"/>, on the same port and directory.</summary>
    public void StartAgain()
    {
        Assert.True(process.HasExited, $"redis-server on port {Port} still runs: Kill it first");
        process.Dispose();
        process = Start();
        WaitForPong();
    }

    void WaitForPong()
    {
        var clock = Stopwatch.StartNew();
        string last = "";
        while (clock.Elapsed < TimeSpan.FromSeconds(15))
        {
            if (process.HasExited)
            {
                process.WaitForExit();   // the output read to its end
                lock (output) throw new InvalidOperationException($"redis-server exited with {process.ExitCode}: {output}");
            }
            try
            {
                if ((last = Command("PING").Trim()) == "PONG") return;
            }
            catch (InvalidOperationException e) { last = e.Message; }
            Thread.Sleep(50);
        }
        throw new TimeoutException($"redis-server on port {Port} did not answer PING in 15 s (last: {last})");
    }

    /// <summary>One redis-cli command (package redis-tools, a dependency of redis-server), in this server's namespace: its raw reply.
    /// Throws with what redis-cli printed when it fails (no connection, an error reply).</summary>
    public string Command(params string[] command)
    {
        using var cli = Process.Start(InNamespace(Cli, new[] { "-h", "127.0.0.1", "-p", Port.ToString(), "--raw" }.Concat(command)))!;
        var error = cli.StandardError.ReadToEndAsync();
        string text = cli.StandardOutput.ReadToEnd();
        Assert.True(cli.WaitForExit(10_000), $"redis-cli {string.Join(' ', command)} did not finish in 10 s");
        if (cli.ExitCode != 0) throw new InvalidOperationException($"redis-cli {string.Join(' ', command)} on port {Port} exited {cli.ExitCode}: {error.Result}{text}");
        return text;
    }

    /// <summary>Every key.</summary>
    public IReadOnlyList<string> Keys() => Command("KEYS", "*").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public void Dispose()
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        process.WaitForExit(5000);
        process.Dispose();
        dir.Dispose();
    }
}
