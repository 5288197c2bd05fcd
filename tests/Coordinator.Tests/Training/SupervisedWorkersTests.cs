using System.Diagnostics;
using System.Text.RegularExpressions;
using Jetpack.Coordinator.Tests.MultiHost;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Protocol.Jobs;
using Xunit.Abstractions;

namespace Jetpack.Coordinator.Tests.Training;

/// <summary>
/// Issue 20 fault 0: <c>jetpack start-workers 3</c> supervises its workers. One SIGKILLed mid-job:
/// its two siblings keep running (same pids), the job recovers on them from its last checkpoint
/// with the uninterrupted losses, and the dead worker is restarted (a new process, same id) and is
/// alive in the coordinator's pool again.
/// </summary>
[Collection(InProcessCoordinators.Name)]
public sealed partial class SupervisedWorkersTests(ITestOutputHelper output) : IAsyncLifetime
{
    readonly DriverCluster cluster = new();
    TestCoordinator coordinator = null!;
    RigProcess? workers;

    public async Task InitializeAsync() =>
        coordinator = await TestCoordinator.StartAsync(cluster.Dir.File("data"), heartbeatTimeout: TimeSpan.FromSeconds(7),
            configure: o => o.ClusterToken = cluster.Token.Value, acquireTimeout: TimeSpan.FromSeconds(60));

    public async Task DisposeAsync()
    {
        if (workers is not null) await workers.DisposeAsync();
        await coordinator.DisposeAsync();
        await cluster.DisposeAsync();
    }

    [GeneratedRegex(@"^worker (sw\d): pid (\d+)")]
    private static partial Regex Started();

    [Fact]
    public async Task AKilledWorkerIsRestartedWhileItsSiblingsKeepRunningAndTheJobRecoversOnThem()
    {
        string tokenFile = cluster.Dir.File("token");
        File.WriteAllText(tokenFile, cluster.Token.Value);
        workers = new RigProcess("start-workers", "dotnet", [Path.Combine(AppContext.BaseDirectory, "jetpack.dll"), "start-workers", "3",
            "--coordinator", coordinator.Grpc.ToString(), "--token-file", tokenFile, "--worker-id-prefix", "sw", "--threads", "1"]);
        await workers.WaitForLine("3 worker(s) joining", TimeSpan.FromMinutes(3));
        var pids = workers.Output.Split('\n').Select(l => Started().Match(l.Trim())).Where(m => m.Success)
                          .ToDictionary(m => m.Groups[1].Value, m => int.Parse(m.Groups[2].Value));
        Assert.Equal(3, pids.Count);
        await DriverCluster.WaitAlive(coordinator.Workers, coordinator.Call, "sw0", "sw1", "sw2");

        string yaml = cluster.Spec("supervised", workers: 3, steps: 24, checkpointEvery: 4);
        await coordinator.Submit(yaml);
        await Await.Until(() => coordinator.Status("supervised"), s => s.Phase == JobPhase.Training && s.Step >= 6 || s.Phase is JobPhase.Completed or JobPhase.Failed,
                          "job supervised to pass step 6", TimeSpan.FromMinutes(5));
        var clock = Stopwatch.StartNew();
        Process.GetProcessById(pids["sw2"]).Kill();
        var noticed = await Await.Until(() => coordinator.Status("supervised"), s => s.Recoveries >= 1 || s.Phase is JobPhase.Completed or JobPhase.Failed,
                                        "the coordinator to notice the killed worker", TimeSpan.FromSeconds(60));
        var detected = clock.Elapsed;
        Assert.True(noticed.Recoveries == 1, $"{noticed.Phase}: {noticed.Message}");
        var restarted = await workers.WaitForLine("worker sw2 restarted: pid", TimeSpan.FromMinutes(2));
        var back = clock.Elapsed;
        int newPid = int.Parse(Regex.Match(restarted, @"pid (\d+)").Groups[1].Value);
        Assert.NotEqual(pids["sw2"], newPid);
        foreach (var sibling in new[] { "sw0", "sw1" })
            Assert.False(Process.GetProcessById(pids[sibling]).HasExited, $"{sibling} (pid {pids[sibling]}) was torn down with its sibling");
        await DriverCluster.WaitAlive(coordinator.Workers, coordinator.Call, "sw2");                 // the restarted process registered again
        var rejoined = clock.Elapsed;

        var done = await Await.Until(() => coordinator.Status("supervised"), s => s.Phase is JobPhase.Completed or JobPhase.Failed, "job supervised to end", TimeSpan.FromMinutes(5));
        Assert.True(done.Phase == JobPhase.Completed, $"{done.Phase}: {done.Message}");
        string outDir = Path.Combine(coordinator.Options.JobsDirectory, "supervised");
        DriverCluster.AssertSameLosses(DriverCluster.SingleProcess(yaml, done.CheckpointPath), DriverCluster.Losses(outDir), "3 supervised workers, one killed and restarted");
        // the restarted sw2 is taken back at the next checkpoint step (fault 7) when it registers early enough before the end
        var last = DriverCluster.Attempts(outDir)[^1];
        string grew = last.GetProperty("cause").GetString()!;
        output.WriteLine($"killed sw2: noticed after {detected.TotalSeconds:F2} s ({noticed.Message}); restarted after {back.TotalSeconds:F2} s; alive in the pool after {rejoined.TotalSeconds:F2} s; " +
                         $"last attempt on {last.GetProperty("world").GetInt32()} workers: {grew}");
        NetnsRig.Record(new
        {
            fault = "0 start-workers supervision (SIGKILL sw2)", detected_s = Math.Round(detected.TotalSeconds, 2), restarted_s = Math.Round(back.TotalSeconds, 2),
            rejoined_s = Math.Round(rejoined.TotalSeconds, 2), message = noticed.Message, last_attempt = grew, at = DateTimeOffset.UtcNow
        });
    }
}
