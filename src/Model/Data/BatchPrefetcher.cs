using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Jetpack.Model.Data;

/// <summary>
/// A bounded prefetch queue over a deterministic sequence of loads: item <c>t</c> is <c>load(t)</c>,
/// a pure function of t (the trainer's t = step × accumulation + micro-batch), made on a background
/// thread up to <see cref="Depth"/> items ahead of the consumer. <see cref="Take"/> returns item t and
/// how long the caller waited for it; asking for another t than the next one (a restore, a resume)
/// drops what was prefetched and restarts there, so the items never depend on the history.
/// The load itself decodes in parallel (the decode pool); this thread only keeps it running ahead.
/// An exception of load(t) is rethrown by Take(t) with its type and stack. Items not taken are disposed.
/// Nothing at or past <see cref="Limit"/> (the run's last ticket + 1) is loaded ahead: a run's end decodes no batch
/// it will not use; a ticket past it is still loaded when taken.
/// </summary>
public sealed class BatchPrefetcher<T> : IDisposable where T : IDisposable
{
    private readonly Func<long, T> _load;
    private readonly object _gate = new();
    private readonly Queue<(long Ticket, T? Item, ExceptionDispatchInfo? Error)> _ready = new();
    private Thread? _thread;
    private long _next;                 // the next ticket the thread loads (guarded by _gate)
    private long _expected = -1;        // the ticket the consumer takes next (guarded by _gate)
    private int _generation;            // bumped at each restart: a load of an old generation is dropped
    private bool _disposed;
    private bool _waiting;              // the consumer waits for _expected (guarded by _gate)

    public BatchPrefetcher(Func<long, T> load, int depth, long limit = long.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(load);
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        _load = load;
        Depth = depth;
        Limit = limit;
    }

    public int Depth { get; }
    public long Limit { get; }

    /// <summary>Item <paramref name="ticket"/> (the caller owns it) and the seconds spent waiting for it.</summary>
    public (T Item, double WaitSeconds) Take(long ticket)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ticket);
        var clock = Stopwatch.StartNew();
        (long Ticket, T? Item, ExceptionDispatchInfo? Error) entry;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (ticket != _expected || _thread is null) Restart(ticket);
            while (_ready.Count == 0)
            {
                _waiting = true;                                // lets the thread load a ticket past the limit
                Monitor.PulseAll(_gate);
                Monitor.Wait(_gate);
            }
            _waiting = false;
            entry = _ready.Dequeue();
            _expected = ticket + 1;
            Monitor.PulseAll(_gate);                            // a queue slot is free
        }
        double waited = clock.Elapsed.TotalSeconds;
        entry.Error?.Throw();
        return (entry.Item!, waited);
    }

    // Called under _gate: drop the queue, start loading at ticket.
    private void Restart(long ticket)
    {
        while (_ready.Count > 0) _ready.Dequeue().Item?.Dispose();
        _next = ticket;
        _expected = ticket;
        int generation = ++_generation;
        Monitor.PulseAll(_gate);
        _thread = new Thread(() => Run(generation)) { IsBackground = true, Name = "BatchPrefetcher" };
        _thread.Start();
    }

    private void Run(int generation)
    {
        while (true)
        {
            long ticket;
            lock (_gate)
            {
                while (!_disposed && generation == _generation && (_next - _expected >= Depth || (_next >= Limit && !(_waiting && _next == _expected))))
                    Monitor.Wait(_gate);
                if (_disposed || generation != _generation) return;
                ticket = _next++;
            }
            (long, T?, ExceptionDispatchInfo?) entry;
            try { entry = (ticket, _load(ticket), null); }
            catch (Exception e) { entry = (ticket, default, ExceptionDispatchInfo.Capture(e)); }
            lock (_gate)
            {
                if (_disposed || generation != _generation)
                {
                    entry.Item2?.Dispose();
                    return;
                }
                _ready.Enqueue(entry);
                Monitor.PulseAll(_gate);
                if (entry.Item3 is not null) return;            // load nothing after a failure
            }
        }
    }

    public void Dispose()
    {
        Thread? thread;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            thread = _thread;
            Monitor.PulseAll(_gate);
        }
        thread?.Join();
        lock (_gate)
            while (_ready.Count > 0) _ready.Dequeue().Item?.Dispose();
    }
}
