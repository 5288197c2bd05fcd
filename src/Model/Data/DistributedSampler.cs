using System.Runtime.Intrinsics;

namespace Jetpack.Model.Data;

/// <summary>
/// Which dataset indices each rank reads at each step, for data-parallel training (spec §7.2:
/// 4 ranks × 256 per rank). The epoch's order is a pure function of (seed, epoch): a Fisher–Yates
/// shuffle driven by SplitMix64, both written out here, so the order never changes with the .NET
/// version (System.Random's algorithm is an implementation detail and has changed before).
/// Global batch k is items [k·B, (k+1)·B) of the permutation; rank r of W takes a contiguous
/// slice of it, the first (B mod W) ranks one item more, so the ranks' slices are disjoint and
/// together are exactly the global batch. Resuming at step k needs nothing but (epoch, k).
/// </summary>
public sealed class DistributedSampler
{
    public DistributedSampler(int count, int globalBatch, int worldSize = 1, int rank = 0, ulong seed = 0, bool dropLast = true)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), $"dataset must hold at least one item, got {count}");
        if (globalBatch < 1) throw new ArgumentOutOfRangeException(nameof(globalBatch), $"global batch must be positive, got {globalBatch}");
        if (worldSize < 1) throw new ArgumentOutOfRangeException(nameof(worldSize), $"world size must be positive, got {worldSize}");
        if (rank < 0 || rank >= worldSize) throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} is outside 0..{worldSize - 1}");
        if (globalBatch < worldSize)
            throw new ArgumentException($"global batch {globalBatch} is smaller than the world size {worldSize}: some ranks would get nothing");
        if (dropLast && globalBatch > count)
            throw new ArgumentException($"global batch {globalBatch} exceeds the dataset ({count} items) with dropLast: an epoch would have no steps");
        Count = count;
        GlobalBatch = globalBatch;
        WorldSize = worldSize;
        Rank = rank;
        Seed = seed;
        DropLast = dropLast;
    }

    public int Count { get; }
    public int GlobalBatch { get; }
    public int WorldSize { get; }
    public int Rank { get; }
    public ulong Seed { get; }
    /// <summary>True: the incomplete last batch is skipped. False: it is served (smaller).</summary>
    public bool DropLast { get; }

    public int StepsPerEpoch => DropLast ? Count / GlobalBatch : (Count + GlobalBatch - 1) / GlobalBatch;

    /// <summary>The epoch's order of all <see cref="Count"/> indices; the same on every rank.</summary>
    public int[] Permutation(long epoch)
    {
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), $"epoch must be ≥ 0, got {epoch}");
        var order = new int[Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        // The stream's state mixes seed and epoch through one SplitMix64 round, so nearby seeds and
        // epochs still start far apart.
        var rng = new SplitMix64(SplitMix64.Mix(Seed ^ SplitMix64.Mix((ulong)epoch + 0x632BE59BD9B4E019UL)));
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = rng.Below((uint)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>Global batch <paramref name="step"/> of <paramref name="epoch"/>, all ranks together.</summary>
    public int[] GlobalBatchAt(long epoch, int step)
    {
        // One shuffle per epoch, not per step: a fresh int[Count] each step was the trainer's largest
        // piece of garbage (120 KB per step on Fashion-MNIST), which let RSS climb between collections.
        var cached = lastPermutation;
        if (cached is null || cached.Value.Epoch != epoch) lastPermutation = cached = (epoch, Permutation(epoch));
        return GlobalSlice(cached.Value.Order, step);
    }

    private (long Epoch, int[] Order)? lastPermutation;

    /// <summary>(offset, length) of rank <paramref name="rank"/>'s part of a batch of <paramref name="batch"/> items.</summary>
    public static (int Offset, int Length) RankSlice(int batch, int worldSize, int rank)
    {
        int q = batch / worldSize, extra = batch % worldSize;
        return (rank * q + Math.Min(rank, extra), q + (rank < extra ? 1 : 0));
    }

    /// <summary>
    /// This rank's indices for each step of <paramref name="epoch"/> from <paramref name="startStep"/>
    /// on: resuming at step k yields exactly the tail of the uninterrupted sequence.
    /// </summary>
    public IEnumerable<int[]> Batches(long epoch, int startStep = 0)
    {
        if (startStep < 0 || startStep > StepsPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(startStep), $"start step {startStep} is outside 0..{StepsPerEpoch}");
        return Iterate(Permutation(epoch), startStep);
    }

    private IEnumerable<int[]> Iterate(int[] order, int startStep)
    {
        for (int step = startStep; step < StepsPerEpoch; step++)
        {
            var global = GlobalSlice(order, step);
            var (offset, length) = RankSlice(global.Length, WorldSize, Rank);
            yield return global.AsSpan(offset, length).ToArray();
        }
    }

    private int[] GlobalSlice(int[] order, int step)
    {
        if (step < 0 || step >= StepsPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(step), $"step {step} is outside 0..{StepsPerEpoch - 1}");
        int start = step * GlobalBatch;
        return order.AsSpan(start, Math.Min(GlobalBatch, Count - start)).ToArray();
    }
}

/// <summary>
/// SplitMix64 (Steele, Lea and Flood 2014; the constants of Vigna's public-domain reference):
/// a 64-bit counter stepped by the golden-ratio increment and passed through a bijective mixer.
/// Fixed here so data order is reproducible forever.
/// </summary>
public struct SplitMix64(ulong state)
{
    private ulong _state = state;

    public ulong Next()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>A value in [0, bound) by multiply-shift (Lemire): the bias is below bound/2⁶⁴, nil in practice.</summary>
    public int Below(uint bound) => (int)Math.BigMul(Next(), bound, out _);

    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary><see cref="Mix(ulong)"/> on 8 lanes at once (the same values).</summary>
    public static Vector512<ulong> Mix(Vector512<ulong> z)
    {
        z = (z ^ Vector512.ShiftRightLogical(z, 30)) * Vector512.Create(0xBF58476D1CE4E5B9UL);
        z = (z ^ Vector512.ShiftRightLogical(z, 27)) * Vector512.Create(0x94D049BB133111EBUL);
        return z ^ Vector512.ShiftRightLogical(z, 31);
    }
}
