using Jetpack.Model.Checkpoints;

namespace Jetpack.GpuWorker.Jobs;

/// <summary>
/// Test-only fault injection (issue 6, recovery test 3: "kill a worker while it writes a
/// checkpoint"): with <c>JETPACK_FAULT_PAUSE_IN_CHECKPOINT=STEP</c> in its environment, the worker
/// that reaches the checkpoint of STEP writes the first half of an expert file into that
/// checkpoint's temporary directory, says so on stderr and stops there for good — so a test's
/// SIGKILL lands in the middle of the write, deterministically. Unset, it costs one comparison.
/// </summary>
public static class CheckpointFault
{
    public const string Variable = "JETPACK_FAULT_PAUSE_IN_CHECKPOINT";
    public const string Marker = "jetpack-worker fault: paused writing";

    private static readonly long PauseAt = long.TryParse(Environment.GetEnvironmentVariable(Variable), out long s) ? s : -1;

    /// <summary>Never returns when this save is the one to interrupt.</summary>
    public static void BeforeSave(string dir, long step, int rank, int world)
    {
        if (step != PauseAt) return;
        var tmp = TrainingCheckpoint.TemporaryDirectory(dir, step);
        Directory.CreateDirectory(tmp);
        var path = Path.Combine(tmp, TrainingCheckpoint.ExpertFile(rank, world));
        using (var f = File.Create(path))
        {
            f.Write(BitConverter.GetBytes(1L << 20));          // a safetensors header length promising more than follows
            f.Write(new byte[4096]);
            f.Flush(flushToDisk: true);
        }
        Console.Error.WriteLine($"{Marker} {path}");
        Thread.Sleep(Timeout.Infinite);
    }
}
