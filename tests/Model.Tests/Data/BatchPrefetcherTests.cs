using Jetpack.Model.Data;

namespace Jetpack.Model.Tests.Data;

/// <summary>The prefetch queue: items in ticket order, at most Depth ahead, restart on a jump, errors at their ticket, leftovers disposed.</summary>
public sealed class BatchPrefetcherTests
{
    private sealed class Item(long ticket, List<long> disposed) : IDisposable
    {
        public long Ticket { get; } = ticket;
        public void Dispose() { lock (disposed) disposed.Add(Ticket); }
    }

    [Fact]
    public void ItemsComeInOrderBoundedAheadAndRestartOnAJump()
    {
        var disposed = new List<long>();
        long loadedMax = -1;
        using var gate = new SemaphoreSlim(0);
        var prefetcher = new BatchPrefetcher<Item>(t =>
        {
            Interlocked.Exchange(ref loadedMax, Math.Max(Interlocked.Read(ref loadedMax), t));
            if (t == 7) throw new InvalidDataException("ticket 7 is bad");
            return new Item(t, disposed);
        }, depth: 3);
        for (long t = 0; t < 3; t++)
        {
            var (item, wait) = prefetcher.Take(t);
            Assert.Equal(t, item.Ticket);
            Assert.True(wait >= 0);
            item.Dispose();
        }
        SpinWait.SpinUntil(() => Interlocked.Read(ref loadedMax) >= 5, TimeSpan.FromSeconds(10));
        Thread.Sleep(50);
        Assert.Equal(5, Interlocked.Read(ref loadedMax));                 // 3, 4, 5 ahead of the consumer at 3: no further

        var (jumped, _) = prefetcher.Take(5);                             // 3 and 4 are dropped (disposed), loading restarts at 5
        Assert.Equal(5, jumped.Ticket);
        jumped.Dispose();
        Assert.Equal(6, prefetcher.Take(6).Item.Ticket);
        Assert.Equal("ticket 7 is bad", Assert.Throws<InvalidDataException>(() => prefetcher.Take(7)).Message);
        Assert.Equal(1, prefetcher.Take(1).Item.Ticket);                  // a restore back: loads again from 1
        prefetcher.Dispose();
        lock (disposed) Assert.Contains(3L, disposed);
    }
}
