using Jetpack.Model.Data;

namespace Jetpack.Model.Tests.Data;

/// <summary>Tar shards assigned to ranks: shard i → rank i mod W, a seeded shuffle buffer per pass, positions replayable for resumes.</summary>
public class ShardStreamTests
{
    // 7 shards of uneven sizes (53 samples): W = 2 and 3 divide neither the shard count nor the samples
    static readonly int[] Sizes = [9, 5, 11, 3, 8, 10, 7];

    static int[] SamplesOfShard(int shard) => [.. Enumerable.Range(Sizes.Take(shard).Sum(), Sizes[shard])];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    public void EachRankReadsOnlyItsOwnShardsAndTheRanksTogetherCoverEverySampleOncePerPass(int world)
    {
        var seen = new List<int>();
        for (int rank = 0; rank < world; rank++)
        {
            var stream = new ShardStream(Sizes, world, rank, perStep: 2, seed: 5, bufferSize: 4);
            var own = Enumerable.Range(0, Sizes.Length).Where(s => s % world == rank).ToList();
            Assert.Equal(own, stream.ShardIndices);
            var mine = own.SelectMany(SamplesOfShard).Order().ToList();
            foreach (long pass in new long[] { 0, 1, 5 })
                Assert.Equal(mine, stream.Pass(pass).Order());                  // each pass: every own sample exactly once
            Assert.NotEqual(stream.Pass(0), stream.Pass(1));                    // reshuffled per pass
            seen.AddRange(stream.Pass(0));
        }
        Assert.Equal(Enumerable.Range(0, Sizes.Sum()), seen.Order());            // disjoint, and together the whole split
    }

    [Fact]
    public void TheOrderIsAPureFunctionOfSeedRankAndPositionSoAResumeGetsTheSameBatches()
    {
        var whole = new ShardStream(Sizes, 2, 1, perStep: 6, seed: 11, bufferSize: 5);
        // 12 steps × 2 micro-batches of 3 cross the pass boundary (rank 1 holds 5 + 3 + 10 = 18 samples) twice
        var uninterrupted = Enumerable.Range(0, 12).SelectMany(s => Enumerable.Range(0, 2).Select(k => whole.MicroBatch(s, k, 3))).ToList();
        Assert.Equal(whole.Pass(0).Concat(whole.Pass(1)).Concat(whole.Pass(2)).Concat(whole.Pass(3)).Take(72), uninterrupted.SelectMany(b => b));
        var resumed = new ShardStream(Sizes, 2, 1, perStep: 6, seed: 11, bufferSize: 5);
        Assert.Equal(uninterrupted[14..], Enumerable.Range(7, 5).SelectMany(s => Enumerable.Range(0, 2).Select(k => resumed.MicroBatch(s, k, 3))));
        Assert.NotEqual(whole.Pass(0), new ShardStream(Sizes, 2, 1, perStep: 6, seed: 12, bufferSize: 5).Pass(0));
        Assert.NotEqual(whole.Pass(0).Order(), new ShardStream(Sizes, 2, 0, perStep: 6, seed: 11, bufferSize: 5).Pass(0).Order());
    }

    [Fact]
    public void TheShuffleBufferBoundsHowFarASampleMovesAndABufferOfOneReadsShardsFrontToBack()
    {
        var sequential = new ShardStream(Sizes, 1, 0, perStep: 1, seed: 3, bufferSize: 1).Pass(0);
        // whole shards in some order, each front to back: the reads of a plain streaming reader
        var shardOrder = new List<int>();
        for (int p = 0; p < sequential.Length;)
        {
            int shard = Enumerable.Range(0, Sizes.Length).First(x => SamplesOfShard(x).Contains(sequential[p]));
            Assert.Equal(SamplesOfShard(shard), sequential[p..(p + Sizes[shard])]);
            shardOrder.Add(shard);
            p += Sizes[shard];
        }
        Assert.NotEqual(Enumerable.Range(0, Sizes.Length), shardOrder);          // the shards' order is shuffled too

        // with a buffer of B (the same shard order: it is drawn first), output q is drawn from samples that entered at
        // input positions ≤ q + B − 1, so no sample leaves more than B − 1 places early
        const int b = 6;
        var stream = new ShardStream(Sizes, 1, 0, perStep: 1, seed: 3, bufferSize: b);
        var entered = sequential.Select((sample, position) => (sample, position)).ToDictionary(x => x.sample, x => x.position);
        var shuffled = stream.Pass(0);
        Assert.NotEqual(sequential, shuffled);
        for (int q = 0; q < shuffled.Length; q++)
            Assert.True(q >= entered[shuffled[q]] - b + 1, $"sample {shuffled[q]} left at {q}, entered at {entered[shuffled[q]]}");
        Assert.Contains(Enumerable.Range(0, shuffled.Length), q => q == entered[shuffled[q]] - b + 1);   // and the bound is reached
        Assert.Equal(b, stream.BufferSize);
        Assert.Equal(Sizes.Sum(), new ShardStream(Sizes, 1, 0, 1, 3, bufferSize: 1_000_000).BufferSize);   // never larger than the rank's samples
    }

    [Fact]
    public void FewerShardsThanRanksOrABadBufferAreRefusedNamingTheFieldAndTheNumbers()
    {
        var few = Assert.Throws<ArgumentException>(() => new ShardStream([4, 4, 4], 4, 0, 1, 0, 10, "/data/train-*.tar"));
        Assert.Contains("data.root", few.Message);
        Assert.Contains("3 shards for 4 data-parallel ranks", few.Message);
        Assert.Contains("rank 3 would read nothing", few.Message);
        Assert.Contains("/data/train-*.tar", few.Message);
        var empty = Assert.Throws<ArgumentException>(() => new ShardStream([4, 0], 2, 1, 1, 0, 10));
        Assert.Contains("rank 1 of 2 owns shards [1]", empty.Message);
        var buffer = Assert.Throws<ArgumentOutOfRangeException>(() => new ShardStream(Sizes, 1, 0, 1, 0, 0));
        Assert.Contains("data.shuffle_buffer", buffer.Message);
    }
}
