using System.Diagnostics;

namespace Jetpack.Coordinator.Tests.Support;

/// <summary>Polls with a deadline; a timeout fails with what was awaited and the last value seen (no sleeps as synchronisation).</summary>
public static class Await
{
    public static async Task<T> Until<T>(Func<Task<T>> probe, Func<T, bool> done, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        var clock = Stopwatch.StartNew();
        T last = await probe();
        while (!done(last))
        {
            if (clock.Elapsed > limit) throw new TimeoutException($"waited {limit.TotalSeconds:F0} s for {what}; last seen: {last}");
            await Task.Delay(50);
            last = await probe();
        }
        return last;
    }
}
