namespace Jetpack.Model.Data;

/// <summary>
/// One data-parallel rank's stream over tar shards (WebDataset's <c>split_by_node</c> + <c>shuffle(n)</c>,
/// made replayable). Shard i belongs to rank i mod W, so a rank opens and reads only its own shards.
/// The rank's stream is an endless sequence of passes over its shards; pass p visits them in an order
/// shuffled from (seed, p, rank), reads each shard front to back (the sequential reads shards exist for),
/// and sends the samples through a shuffle buffer of <see cref="BufferSize"/> samples, drained at the end
/// of the pass: every sample of the rank is served exactly once per pass, no sample of another rank ever.
/// <para>
/// The order is computed from the sample counts alone (indices, no bytes read: the buffer holds
/// indices, and the reader fetches each sample by its offset), so position q of the stream is a pure
/// function of (seed, rank, W, q): a resume at step s starts at position s × <see cref="PerStep"/> and
/// decodes nothing before it. Passes are per rank, not per epoch: with uneven shards the ranks' passes
/// end at different steps, and a rank with fewer samples sees each of them more often (as WebDataset's
/// resampled shards do); the trainer's epoch stays Count / global batch steps, independent of W.
/// </para>
/// </summary>
public sealed class ShardStream
{
    /// <summary>The shuffle buffer when data.shuffle_buffer is not given: WebDataset's usual <c>shuffle(1000)</c>.
    /// Here it costs 4 bytes a sample (indices), but its reads come from a window of that many samples of the shards.</summary>
    public const int DefaultBufferSize = 1000;
    /// <summary>The largest buffer accepted (checked before the buffer is allocated).</summary>
    public const int MaxBufferSize = 1 << 24;

    private readonly int[] _samples;                  // this rank's sample indices, shard by shard in shard order
    private readonly (int Start, int Count)[] _shards; // this rank's shards: their ranges in _samples
    private readonly object _gate = new();
    private readonly Dictionary<long, int[]> _passes = [];   // the last two passes built (a micro-batch may straddle them)

    /// <param name="shardSizes">the samples of each shard of the split, in shard order (sample indices are consecutive across shards)</param>
    /// <param name="worldSize">W, the data-parallel ranks</param>
    /// <param name="perStep">the samples this rank reads per optimizer step (its slice of every micro-batch)</param>
    /// <param name="what">names the shards in errors (e.g. the root's train-*.tar)</param>
    public ShardStream(IReadOnlyList<int> shardSizes, int worldSize, int rank, int perStep, ulong seed, int bufferSize, string what = "the shards")
    {
        ArgumentNullException.ThrowIfNull(shardSizes);
        if (worldSize < 1) throw new ArgumentOutOfRangeException(nameof(worldSize), $"world size must be positive, got {worldSize}");
        if (rank < 0 || rank >= worldSize) throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} is outside 0..{worldSize - 1}");
        if (perStep < 1) throw new ArgumentOutOfRangeException(nameof(perStep), $"rank {rank}: samples per step must be positive, got {perStep}");
        if (bufferSize is < 1 or > MaxBufferSize)
            throw new ArgumentOutOfRangeException(nameof(bufferSize), $"data.shuffle_buffer must be in 1..{MaxBufferSize}, got {bufferSize}");
        if (shardSizes.Count < worldSize)
            throw new ArgumentException($"data.root: {what} are {shardSizes.Count} shard{(shardSizes.Count == 1 ? "" : "s")} for {worldSize} data-parallel ranks " +
                                        $"(shard i goes to rank i mod {worldSize}): rank {shardSizes.Count} would read nothing; pack with a smaller --shard-size " +
                                        $"for at least {worldSize} shards, or run on at most {shardSizes.Count} workers");
        WorldSize = worldSize;
        Rank = rank;
        PerStep = perStep;
        Seed = seed;
        var shards = new List<(int, int)>();
        var samples = new List<int>();
        for (int s = 0, start = 0; s < shardSizes.Count; start += shardSizes[s], s++)
        {
            if (shardSizes[s] < 0) throw new ArgumentException($"{what}: shard {s} has {shardSizes[s]} samples");
            if (s % worldSize != rank) continue;
            shards.Add((samples.Count, shardSizes[s]));
            for (int i = 0; i < shardSizes[s]; i++) samples.Add(start + i);
            ShardIndices.Add(s);
        }
        if (samples.Count == 0)
            throw new ArgumentException($"data.root: rank {rank} of {worldSize} owns shards [{string.Join(", ", ShardIndices)}] of {what}, which hold no samples");
        _samples = [.. samples];
        _shards = [.. shards];
        BufferSize = Math.Min(bufferSize, _samples.Length);
    }

    public int WorldSize { get; }
    public int Rank { get; }
    public int PerStep { get; }
    public ulong Seed { get; }
    /// <summary>The buffer in use: data.shuffle_buffer, at most the rank's samples.</summary>
    public int BufferSize { get; }
    /// <summary>The shards this rank reads (i with i mod W = rank), by index in the split.</summary>
    public List<int> ShardIndices { get; } = [];
    /// <summary>The samples of this rank's shards: the length of one pass.</summary>
    public int Count => _samples.Length;

    /// <summary>Sample indices at stream positions [position, position + length) (crossing into the next pass when one ends). Thread-safe.</summary>
    public int[] Take(long position, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        var taken = new int[length];
        for (int i = 0; i < length;)
        {
            long pass = (position + i) / Count;
            int at = (int)((position + i) % Count), n = Math.Min(length - i, Count - at);
            Array.Copy(Pass(pass), at, taken, i, n);
            i += n;
        }
        return taken;
    }

    /// <summary>This rank's samples of micro-batch k of step s: positions s × PerStep + k × length onwards.</summary>
    public int[] MicroBatch(long step, int k, int length) => Take(step * PerStep + (long)k * length, length);

    /// <summary>Pass <paramref name="pass"/>: every sample of this rank's shards once, in stream order.</summary>
    public int[] Pass(long pass)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pass);
        lock (_gate)
        {
            if (_passes.TryGetValue(pass, out var cached)) return cached;
            var order = Build(pass);
            if (_passes.Count >= 2) _passes.Remove(_passes.Keys.Min());
            _passes[pass] = order;
            return order;
        }
    }

    // Shard order: Fisher–Yates over the rank's shards; then the shards' samples in file order through
    // the buffer (fill it, then each incoming sample evicts a uniformly drawn resident one; drain it at
    // random at the end). One SplitMix64 stream per (seed, pass, rank), as DistributedSampler draws its epochs.
    private int[] Build(long pass)
    {
        var rng = new SplitMix64(SplitMix64.Mix(Seed ^ SplitMix64.Mix((ulong)pass + 0x5A4D5EEDUL) ^ SplitMix64.Mix((ulong)Rank * 0xD1B54A32D192ED03UL + 1)));
        var shardOrder = new int[_shards.Length];
        for (int i = 0; i < shardOrder.Length; i++) shardOrder[i] = i;
        for (int i = shardOrder.Length - 1; i > 0; i--)
        {
            int j = rng.Below((uint)(i + 1));
            (shardOrder[i], shardOrder[j]) = (shardOrder[j], shardOrder[i]);
        }
        var order = new int[Count];
        var buffer = new int[BufferSize];
        int filled = 0, written = 0;
        foreach (int s in shardOrder)
        {
            var (start, count) = _shards[s];
            for (int i = start; i < start + count; i++)
            {
                if (filled < buffer.Length) { buffer[filled++] = _samples[i]; continue; }
                int j = rng.Below((uint)buffer.Length);
                order[written++] = buffer[j];
                buffer[j] = _samples[i];
            }
        }
        while (filled > 0)
        {
            int j = rng.Below((uint)filled);
            order[written++] = buffer[j];
            buffer[j] = buffer[--filled];
        }
        return order;
    }
}
