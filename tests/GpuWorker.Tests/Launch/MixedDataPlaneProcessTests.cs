using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Jetpack.Protocol.Channels;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Wire;
using Xunit.Abstractions;

namespace Jetpack.GpuWorker.Tests.Launch;

/// <summary>
/// Two jetpack-worker processes started by hand, as an operator would, with different <c>--data-plane</c> values and the
/// production step deadline (60 s): their first exchange fails on both at once, each naming itself, the other rank, its
/// address and both planes (before, the pulls waited out the deadline).
/// </summary>
public class MixedDataPlaneProcessTests(ITestOutputHelper output)
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    [Theory]
    [InlineData("grpc-pull", "tcp")]
    [InlineData("tcp", "grpc-pull")]
    public async Task WorkersStartedByHandOnTwoPlanesFailTheirFirstExchangeAtOnceNamingBoth(string plane0, string plane1)
    {
        string[] planes = [plane0, plane1];
        var token = ClusterToken.Generate();
        int[] ports = [FreePort(), FreePort()];
        string peers = string.Join(',', ports.Select(p => $"127.0.0.1:{p}"));
        var workers = new List<Process>();
        var channels = new List<Grpc.Net.Client.GrpcChannel>();
        try
        {
            for (int r = 0; r < 2; r++)
            {
                var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = false, RedirectStandardError = false };
                foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "jetpack-worker.dll"), "--rank", r.ToString(), "--world", "2", "--peers", peers,
                                          "--port", ports[r].ToString(), "--listen", "127.0.0.1", "--job", "mixed-planes", "--threads", "1",
                                          "--deadline-seconds", Deadline.TotalSeconds.ToString(), "--parent-pid", Environment.ProcessId.ToString(), "--data-plane", planes[r] })
                    psi.ArgumentList.Add(a);
                psi.Environment.Remove(ClusterToken.EnvFileVariable);
                psi.Environment[ClusterToken.EnvVariable] = token.Value;
                workers.Add(Process.Start(psi)!);
            }
            channels.AddRange(ports.Select(p => WireChannels.Open($"127.0.0.1:{p}", WireLimits.Default)));
            var control = channels.Select(c => new WorkerControl.WorkerControlClient(c.Intercept(new ClusterTokenCallInterceptor(token)))).ToArray();
            for (int r = 0; r < 2; r++)                                          // both up: each answers Health, naming its plane
            {
                var up = Stopwatch.StartNew();
                while (true)
                {
                    try
                    {
                        var health = await control[r].HealthAsync(new HealthRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
                        Assert.Equal(planes[r], health.DataPlane);
                        break;
                    }
                    catch (RpcException) when (up.Elapsed < TimeSpan.FromSeconds(90) && !workers[r].HasExited)
                    {
                        await Task.Delay(200);                                  // still starting
                    }
                }
            }

            var clock = Stopwatch.StartNew();
            var calls = Enumerable.Range(0, 2).Select(async r =>
            {
                var e = await Assert.ThrowsAsync<RpcException>(() => control[r].BenchExchangeAsync(new BenchExchangeRequest { BytesPerPeer = 1 << 16, Rounds = 1 },
                                                                                                   deadline: DateTime.UtcNow + 2 * Deadline).ResponseAsync);
                return (Error: e, Elapsed: clock.Elapsed);
            }).ToArray();
            var failed = await Task.WhenAll(calls);
            string load = string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
            for (int r = 0; r < 2; r++)
            {
                var (e, elapsed) = failed[r];
                output.WriteLine($"processes {plane0}/{plane1}: rank {r} failed after {elapsed.TotalMilliseconds:F0} ms (deadline {Deadline.TotalSeconds:F0} s, load {load}): {e.Status.Detail}");
                Assert.Equal(StatusCode.Aborted, e.StatusCode);
                Assert.Contains($"rank {r} uses the {planes[r]} data plane but rank {1 - r} (127.0.0.1:{ports[1 - r]}) uses {planes[1 - r]}: start every worker with the same --data-plane",
                                e.Status.Detail);
                Assert.True(elapsed < TimeSpan.FromSeconds(10), $"rank {r} learnt of the mixed planes only after {elapsed.TotalSeconds:F1} s");
            }
            Assert.All(workers, w => Assert.False(w.HasExited));                 // failing a step does not end a worker
        }
        finally
        {
            foreach (var c in channels) c.Dispose();
            foreach (var w in workers)
            {
                if (!w.HasExited) w.Kill(entireProcessTree: true);
                await w.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
                w.Dispose();
            }
        }
    }
}
