using System.Collections;
using System.Runtime.ExceptionServices;

namespace Jetpack.Model.Data;

/// <summary>
/// Iterates a dataset in fixed batches, in order: batch k holds
/// <c>indices[k·batchSize .. (k+1)·batchSize)</c> (the last one shorter unless <c>dropLast</c>).
/// Batches are built by <see cref="IImageDataset.Batch"/> on <c>workers</c> background threads,
/// at most <c>prefetch</c> batches ahead of the consumer (built or being built), which bounds the
/// memory held to prefetch batches.
/// <para>
/// Each enumeration starts its own workers; disposing the enumerator (a <c>foreach</c> does, also
/// on break or exception) stops them, waits for the batches in flight and disposes every batch
/// not handed out. The consumer owns and disposes each <see cref="ImageBatch"/> it receives.
/// An exception on a worker (e.g. <see cref="InvalidDataException"/> naming a corrupt file) is
/// rethrown by <c>MoveNext</c> with its original type and stack when the consumer reaches that
/// batch; batches before it are still delivered.
/// </para>
/// </summary>
public sealed class BatchLoader : IEnumerable<ImageBatch>
{
    private readonly IImageDataset _dataset;
    private readonly int[] _indices;

    public BatchLoader(IImageDataset dataset, IReadOnlyList<int> indices, int batchSize,
        int workers = 2, int prefetch = 4, bool dropLast = false)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(indices);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(prefetch, 1);
        foreach (var i in indices)
            DatasetBatching.CheckIndex(i, dataset.Count);
        _dataset = dataset;
        _indices = [.. indices];
        BatchSize = batchSize;
        Workers = workers;
        Prefetch = prefetch;
        BatchCount = dropLast ? _indices.Length / batchSize : (_indices.Length + batchSize - 1) / batchSize;
    }

    public int BatchSize { get; }
    public int Workers { get; }
    public int Prefetch { get; }
    public int BatchCount { get; }

    /// <summary>The dataset indices of batch <paramref name="k"/>.</summary>
    public ArraySegment<int> IndicesOf(int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(k, BatchCount);
        int start = k * BatchSize;
        return new ArraySegment<int>(_indices, start, Math.Min(BatchSize, _indices.Length - start));
    }

    public IEnumerator<ImageBatch> GetEnumerator() => new Run(this);

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>One pass: workers claim batch numbers in increasing order and fill a ring of <c>prefetch</c> slots.</summary>
    private sealed class Run : IEnumerator<ImageBatch>
    {
        private readonly BatchLoader _loader;
        private readonly object _gate = new();
        private readonly Slot[] _ring;          // batch k lives in _ring[k % prefetch]
        private readonly Thread[] _threads;
        private int _nextToClaim;               // guarded by _gate
        private int _nextToYield;               // guarded by _gate
        private bool _stopping;                 // guarded by _gate: dispose, or a worker failed
        private bool _disposed;
        private ImageBatch? _current;

        public Run(BatchLoader loader)
        {
            _loader = loader;
            _ring = new Slot[loader.Prefetch];
            _threads = new Thread[Math.Min(loader.Workers, Math.Max(1, loader.BatchCount))];
            for (int t = 0; t < _threads.Length; t++)
            {
                _threads[t] = new Thread(Work) { IsBackground = true, Name = $"BatchLoader worker {t}" };
                _threads[t].Start();
            }
        }

        public ImageBatch Current => _current ?? throw new InvalidOperationException("MoveNext has not returned true");

        object IEnumerator.Current => Current;

        /// <summary>Waits for the next batch in order; false at the end, or once disposed (also after a worker's error was thrown).</summary>
        public bool MoveNext()
        {
            if (_disposed) return false;
            Slot slot;
            lock (_gate)
            {
                if (_nextToYield >= _loader.BatchCount) return false;
                ref var ring = ref _ring[_nextToYield % _ring.Length];
                while (!ring.Ready)
                    Monitor.Wait(_gate);
                slot = ring;
                ring = default;
                _nextToYield++;
                Monitor.PulseAll(_gate);            // a window slot is free
            }
            if (slot.Error is not null)
            {
                _current = null;
                Dispose();                          // stop the workers before the consumer sees the error
                slot.Error.Throw();
            }
            _current = slot.Batch;
            return true;
        }

        public void Reset() => throw new NotSupportedException("start a new enumeration instead");

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            lock (_gate)
            {
                _stopping = true;
                Monitor.PulseAll(_gate);
            }
            foreach (var thread in _threads)
                thread.Join();                      // waits for batches in flight (one per worker)
            for (int i = 0; i < _ring.Length; i++)
            {
                _ring[i].Batch?.Dispose();
                _ring[i] = default;
            }
        }

        private void Work()
        {
            while (true)
            {
                int k;
                lock (_gate)
                {
                    while (!_stopping && _nextToClaim < _loader.BatchCount && _nextToClaim - _nextToYield >= _ring.Length)
                        Monitor.Wait(_gate);
                    if (_stopping || _nextToClaim >= _loader.BatchCount) return;
                    k = _nextToClaim++;
                }

                Slot slot = new() { Ready = true };
                try
                {
                    var (images, labels) = _loader._dataset.Batch(_loader.IndicesOf(k));
                    slot.Batch = new ImageBatch(images, labels);
                }
                catch (Exception e)
                {
                    slot.Error = ExceptionDispatchInfo.Capture(e);
                }

                lock (_gate)
                {
                    if (_stopping && _disposed)
                    {
                        slot.Batch?.Dispose();      // nobody will take it
                        return;
                    }
                    _ring[k % _ring.Length] = slot;
                    if (slot.Error is not null)
                        _stopping = true;           // claim nothing more; earlier batches still finish
                    Monitor.PulseAll(_gate);
                    if (_stopping) return;
                }
            }
        }

        private struct Slot
        {
            public bool Ready;
            public ImageBatch? Batch;
            public ExceptionDispatchInfo? Error;
        }
    }
}
