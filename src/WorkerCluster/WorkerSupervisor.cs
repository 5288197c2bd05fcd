namespace Jetpack.WorkerCluster;

/// <summary>
/// Keeps a coordinator's local workers running (<c>jetpack start-workers</c>, issue 20 fault 0): a
/// worker that exits is started again under the same id after a backoff (1 s, doubled per quick
/// exit up to 30 s; back to 1 s once it ran a minute) while its siblings keep running — torchrun's
/// "one dies, all go" would take healthy workers from the coordinator's recovery. The coordinator
/// sees the dead worker's heartbeats stop, recovers its job on the survivors, and hands the
/// restarted worker runs again.
/// </summary>
public static class WorkerSupervisor
{
    public static readonly TimeSpan FirstBackoff = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);
    /// <summary>A worker that ran this long before exiting restarts after <see cref="FirstBackoff"/> again.</summary>
    public static readonly TimeSpan StableAfter = TimeSpan.FromMinutes(1);

    /// <summary>Supervises until <paramref name="cancel"/>; <paramref name="report"/> gets one line per exit and restart.</summary>
    public static async Task RunAsync(WorkerLauncher launcher, Action<string> report, CancellationToken cancel)
    {
        int n = launcher.Workers.Count;
        var backoff = Enumerable.Repeat(FirstBackoff, n).ToArray();
        var started = Enumerable.Repeat(DateTime.UtcNow, n).ToArray();
        while (!cancel.IsCancellationRequested)
        {
            try { await Task.WhenAny(launcher.Workers.Select(w => w.Exited)).WaitAsync(cancel); }
            catch (OperationCanceledException) { return; }
            for (int r = 0; r < n; r++)
            {
                var w = launcher.Workers[r];
                if (!w.HasExited) continue;
                var ran = DateTime.UtcNow - started[r];
                if (ran >= StableAfter) backoff[r] = FirstBackoff;
                string id = launcher.Options.WorkerIdPrefix + r;
                report($"worker {id} (pid {w.Pid}) exited with code {w.Exited.Result} after {ran.TotalSeconds:F0} s; restarting it in {backoff[r].TotalSeconds:F0} s (the others keep running)");
                try { await Task.Delay(backoff[r], cancel); }
                catch (OperationCanceledException) { return; }
                backoff[r] = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, backoff[r].Ticks * 2));
                started[r] = DateTime.UtcNow;
                try
                {
                    var fresh = await launcher.RestartAsync(r, cancel);
                    report($"worker {id} restarted: pid {fresh.Pid}, http://{fresh.Address}");
                }
                catch (LaunchFailedException e) { report($"worker {id} failed to restart: {e.Message}"); }   // its exit brings it round again, later
                catch (OperationCanceledException) { return; }
            }
        }
    }
}
