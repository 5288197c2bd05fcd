using Jetpack.Application.Data;
using Jetpack.Application.Runs;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Fixtures;
using Jetpack.Model.Distributed;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;
using TorchSharp;

namespace Jetpack.Application.Tests.Data;

/// <summary>
/// data.dataset: shards with several data-parallel ranks: each rank (its own ShardDataset, as in its own
/// process) reads only the shards i with i mod W = rank, and a run resumed mid-epoch continues exactly.
/// </summary>
public sealed class ShardRanksTests : IDisposable
{
    static readonly ModelSpec Tiny = new("tiny_shard_ranks", Vit: new VitConfig
    {
        ImageSize = 32, PatchSize = 8, InChannels = 3, NumClasses = 3, Dim = 16, Depth = 1, Heads = 2, Pool = PoolKind.Avg,
    });

    readonly string dir = Directory.CreateTempSubdirectory("jetpack-shard-ranks-").FullName;
    readonly string packed;

    public ShardRanksTests()
    {
        var tree = ImageTreeGenerator.Write(Path.Combine(dir, "imagenet"), classes: 3, trainPerClass: 10, valPerClass: 1, maxSide: 480);
        packed = Path.Combine(dir, "shards");
        ShardPacker.Pack(tree.Root, packed, ShardPacker.ParseSize("64KiB"));
    }

    public void Dispose() => Directory.Delete(dir, recursive: true);

    RunData Data(int buffer = 4) => new()
    {
        Dataset = "shards", Root = packed, RandAugment = false, RandomErasing = false, Workers = 1, Prefetch = 2, ShuffleBuffer = buffer,
    };

    [Fact]
    public void TwoRanksReadOnlyTheirOwnShardsDisjointly()
    {
        const int world = 2, steps = 3, batch = 4;              // each rank reads 2 images a step
        int shardCount = ShardDataset.ShardFiles(packed, "train").Length;
        Assert.True(shardCount >= 4, $"the fixture packs into {shardCount} train shards, want ≥ 4");
        var spec = RunSpec.WithoutRandomness(Tiny);
        var hub = new InProcessHub(world, TimeSpan.FromSeconds(60));
        var ranks = Jetpack.Model.Tests.Distributed.Ranks.Run(world, rank =>
        {
            var (train, _) = RunDatasets.Open(Data(), spec);
            var shards = ShardDataset.Of(train)!;
            var context = new DistributedContext(rank, world, hub[rank], hub[rank]);
            torch.manual_seed(3);
            using var model = ModelRegistry.Create(spec, torch.CPU, context.Shard);
            using var trainer = new Trainer(spec, model, train, new TrainerOptions { Steps = steps, GlobalBatch = batch, WarmupSteps = 1, Seed = 5 }, torch.CPU, context);
            StepResult last = null!;
            while (trainer.Step < steps) last = trainer.TrainStep();
            return (Last: last, Reads: shards.ReadsByShard(), Sizes: shards.ShardSizes.ToArray(), Stream: trainer.Shards!.Pass(0));
        }, TimeSpan.FromSeconds(120));
        for (int rank = 0; rank < world; rank++)
        {
            var (last, reads, sizes, pass) = ranks[rank];
            Assert.True(double.IsFinite(last.Loss));
            Assert.Equal(steps * batch / world, last.ImagesRead);
            Assert.Equal(steps * batch / world, reads.Sum());                                   // the packed shards hold no bad file to substitute
            for (int s = 0; s < reads.Length; s++)
            {
                if (s % world != rank) Assert.True(reads[s] == 0, $"rank {rank} read {reads[s]} images of shard {s}, which is rank {s % world}'s");
                Assert.True(reads[s] <= sizes[s], $"rank {rank} read shard {s} ({sizes[s]} samples) {reads[s]} times: a sample twice within a pass");
            }
            Assert.True(reads.Count(r => r > 0) >= 1);
        }
        // the ranks' passes split the epoch: disjoint, and together every sample
        Assert.Empty(ranks[0].Stream.Intersect(ranks[1].Stream));
        Assert.Equal(Enumerable.Range(0, ranks[0].Sizes.Sum()), ranks[0].Stream.Concat(ranks[1].Stream).Order());
    }

    [Fact]
    public void AShardRunResumedMidEpochHasTheUninterruptedLosses()
    {
        var recipe = new TrainerOptions { Steps = 5, GlobalBatch = 4, WarmupSteps = 1, Seed = 9 };
        var spec = RunSpec.WithoutRandomness(Tiny);
        (List<double> Losses, long[] Reads, StepResult Last) Train(long to, string? restore, string? save)
        {
            var (train, _) = RunDatasets.Open(Data(buffer: 5), spec);
            torch.manual_seed(9);
            using var model = ModelRegistry.Create(spec);
            using var trainer = new Trainer(spec, model, train, recipe, prefetch: 2);
            if (restore is not null) trainer.Restore(restore);
            var losses = new List<double>();
            StepResult last = null!;
            while (trainer.Step < to) { last = trainer.TrainStep(); losses.Add(last.Loss); }
            if (save is not null) trainer.Save(save);
            return (losses, ShardDataset.Of(train)!.ReadsByShard(), last);
        }

        var whole = Train(5, null, null);
        string checkpoint = Path.Combine(dir, "checkpoint");
        var first = Train(3, null, checkpoint);
        var second = Train(5, checkpoint, null);
        Assert.Equal(whole.Losses, first.Losses.Concat(second.Losses));
        Assert.Equal(2 * 4, second.Last.ImagesRead);                                         // the resumed process read only its two steps
        Assert.Equal(2 * 4, second.Reads.Sum());                                              // and decoded nothing before them
        Assert.Equal(5 * 4, whole.Reads.Sum());                                               // nothing is decoded past the run's last step
    }
}
