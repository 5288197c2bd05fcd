using System.Diagnostics;
using System.Net.Sockets;

namespace Jetpack.Coordinator.Tests.Support;

/// <summary>
/// A real Debian redis-server on loopback: random port, its own temp directory, no persistence to
/// disk (the tests restart the coordinator, not Redis). Needs the apt package redis-server
/// (scripts/setup.sh installs it).
/// </summary>
public sealed class RedisServer : IDisposable
{
    const string Binary = "/usr/bin/redis-server";
    readonly Process process;
    readonly TempDir dir = new();
    public int Port { get; }
    public string Configuration => $"127.0.0.1:{Port}";

    public RedisServer()
    {
        Assert.True(File.Exists(Binary), $"{Binary} missing: run scripts/setup.sh (apt package redis-server)");
        Port = FreePort.Next();
        var psi = new ProcessStartInfo(Binary) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir.Path };
        foreach (var a in new[] { "--port", Port.ToString(), "--bind", "127.0.0.1", "--dir", dir.Path, "--save", "", "--appendonly", "no", "--protected-mode", "yes" })
            psi.ArgumentList.Add(a);
        process = Process.Start(psi)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
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
