using System.Diagnostics;
using System.Net.Sockets;

namespace Jetpack.Coordinator.Tests.Support;

/// <summary>
/// A real Debian redis-server on loopback: random port, its own temp directory. By default no
/// persistence to disk (the tests restart the coordinator, not Redis); <c>persistent</c> runs it as
/// deploy/k8s does, with the append-only file (fsync on every write here), so that <see cref="Kill"/> and
/// <see cref="StartAgain"/> (same port and directory) lose nothing it acknowledged. Needs the
/// apt package redis-server (scripts/setup.sh installs it).
/// </summary>
public sealed class RedisServer : IDisposable
{
    const string Binary = "/usr/bin/redis-server";
    Process process;
    readonly TempDir dir = new();
    readonly bool persistent;
    public int Port { get; }
    public string Configuration => $"127.0.0.1:{Port}";

    public RedisServer(bool persistent = false)
    {
        Assert.True(File.Exists(Binary), $"{Binary} missing: run scripts/setup.sh (apt package redis-server)");
        this.persistent = persistent;
        Port = FreePort.Next();
        process = Start();
        WaitForPong();
    }

    Process Start()
    {
        var psi = new ProcessStartInfo(Binary) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir.Path };
        string[] persistence = persistent ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"];
        foreach (var a in new[] { "--port", Port.ToString(), "--bind", "127.0.0.1", "--dir", dir.Path, "--save", "", "--protected-mode", "yes" }.Concat(persistence))
            psi.ArgumentList.Add(a);
        var started = Process.Start(psi)!;
        started.ErrorDataReceived += (_, _) => { };
        started.BeginErrorReadLine();
        return started;
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
            if (process.HasExited) throw new InvalidOperationException($"redis-server exited with {process.ExitCode}: {process.StandardOutput.ReadToEnd()}");
            try
            {
                using var client = new TcpClient("127.0.0.1", Port);
                using var stream = client.GetStream();
                stream.Write("PING\r\n"u8);
                var buffer = new byte[16];
                int n = stream.Read(buffer);
                last = System.Text.Encoding.ASCII.GetString(buffer, 0, n);
                if (last.StartsWith("+PONG")) return;
            }
            catch (SocketException e) { last = e.Message; }
            Thread.Sleep(50);
        }
        throw new TimeoutException($"redis-server on port {Port} did not answer PING in 15 s (last: {last})");
    }

    /// <summary>Every key, through redis-cli (package redis-tools, a dependency of redis-server).</summary>
    public IReadOnlyList<string> Keys()
    {
        var psi = new ProcessStartInfo("/usr/bin/redis-cli") { RedirectStandardOutput = true };
        foreach (var a in new[] { "-h", "127.0.0.1", "-p", Port.ToString(), "--raw", "KEYS", "*" }) psi.ArgumentList.Add(a);
        using var cli = Process.Start(psi)!;
        string text = cli.StandardOutput.ReadToEnd();
        Assert.True(cli.WaitForExit(10_000), "redis-cli KEYS did not finish in 10 s");
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    public void Dispose()
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        process.WaitForExit(5000);
        process.Dispose();
        dir.Dispose();
    }
}
