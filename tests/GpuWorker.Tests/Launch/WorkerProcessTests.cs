using System.Diagnostics;
using Grpc.Core;
using Jetpack.WorkerCluster;
using Jetpack.Protocol.Wire;

namespace Jetpack.GpuWorker.Tests.Launch;

/// <summary>Real jetpack-worker processes on loopback, started by the same launcher `jetpack` uses.</summary>
public class WorkerProcessTests
{
    static Task<BenchExchangeReply[]> BenchAll(WorkerLauncher l, long bytes, int rounds, IEnumerable<int>? ranks = null) =>
        Task.WhenAll((ranks ?? Enumerable.Range(0, l.Options.WorldSize)).Select(r =>
            l.Control(r).BenchExchangeAsync(new BenchExchangeRequest { BytesPerPeer = bytes, Rounds = rounds, Warmup = 1 },
                                            deadline: DateTime.UtcNow.AddSeconds(120)).ResponseAsync));

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task WorkersStartExchangeBetweenProcessesAndVerifyWhatArrived(int world)
    {
        await using var l = await WorkerLauncher.StartAsync(new LaunchOptions { WorldSize = world, ThreadsPerWorker = 1 });
        Assert.Equal(world, l.Workers.Select(w => w.Pid).Distinct().Count());
        var replies = await BenchAll(l, 3 << 20, rounds: 2);                  // 3 MiB per peer: several chunks
        foreach (var r in replies)
        {
            Assert.True(r.Verified, $"rank {r.Rank}: received pieces did not hold their sources' values");
            Assert.Equal(2L * (world - 1) * (3 << 20), r.BytesSent);
            Assert.Equal(r.BytesSent, r.BytesReceived);
        }
    }

    [Fact]
    public async Task AKilledWorkerMakesTheOthersFailFastNamingItsRank()
    {
        var deadline = TimeSpan.FromSeconds(5);
        await using var l = await WorkerLauncher.StartAsync(new LaunchOptions { WorldSize = 3, ThreadsPerWorker = 1, StepDeadline = deadline });
        await BenchAll(l, 1 << 16, rounds: 1);                                // all connected and working
        await l.KillAsync(2);
        Assert.True(l.Workers[2].HasExited);
        var clock = Stopwatch.StartNew();
        var calls = new[] { 0, 1 }.Select(r => l.Control(r).BenchExchangeAsync(new BenchExchangeRequest { BytesPerPeer = 1 << 16, Rounds = 1 },
                                                                             deadline: DateTime.UtcNow.AddSeconds(60)).ResponseAsync).ToArray();
        foreach (var (call, r) in calls.Select((c, r) => (c, r)))
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => call);
            Assert.Equal(StatusCode.Aborted, e.StatusCode);
            Assert.Contains($"rank {r}", e.Status.Detail);
            Assert.Contains("rank 2", e.Status.Detail);
            Assert.Contains("Dispatch", e.Status.Detail);
        }
        Assert.True(clock.Elapsed < deadline + TimeSpan.FromSeconds(5), $"the survivors took {clock.Elapsed.TotalSeconds:F1} s to fail (deadline {deadline.TotalSeconds} s)");
        Assert.False(l.Workers[0].HasExited);                                  // failing a step does not kill the worker
    }

    [Fact]
    public async Task AWorkerThatCannotStartFailsTheLaunchWithItsExitCodeAndStderr()
    {
        var e = await Assert.ThrowsAsync<LaunchFailedException>(() => WorkerLauncher.StartAsync(new LaunchOptions { WorldSize = 2, JobId = " ", ThreadsPerWorker = 1 }));
        Assert.Contains("exited with code 2", e.Message);
        Assert.Contains("--job must not be empty", e.Message);
    }

    [Fact]
    public async Task AWorkerWithoutATokenRefusesToStart()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "jetpack-worker.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { dll, "--rank", "0", "--world", "1", "--port", "0" }) psi.ArgumentList.Add(a);
        psi.Environment.Remove("JETPACK_CLUSTER_TOKEN");
        psi.Environment.Remove("JETPACK_CLUSTER_TOKEN_FILE");
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(2, p.ExitCode);
        Assert.Contains("no cluster token", await err);
    }
}
