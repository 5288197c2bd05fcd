using System.Text.Json;
using Jetpack.Application.Data;
using Jetpack.Application.Runs;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Fixtures;
using Jetpack.Model.Models;
using Jetpack.Model.Training;
using Jetpack.Protocol.Telemetry;
using Jetpack.Tests.Telemetry;
using Jetpack.WorkerCluster;

namespace Jetpack.GpuWorker.Tests.Jobs;

/// <summary>
/// Issue 18: two jetpack-worker processes train an expert-parallel ViT from a generated ImageNet-like tree
/// (data.dataset: imagefolder) and from its packed tar shards (data.dataset: shards), evaluate on val/,
/// and show by their per-rank read counts (progress and /metrics) that each rank read only its part:
/// its slice of every global batch, or its own shards (i mod 2 = rank).
/// </summary>
public sealed class ImageDataRanksTests : IDisposable
{
    const int World = 2, GlobalBatch = 8;

    static readonly ModelSpec Tiny = new("tiny_rgb_expert_parallel", Vit: new VitConfig
    {
        ImageSize = 32, PatchSize = 8, InChannels = 3, NumClasses = 4, Dim = 32, Depth = 2, Heads = 2, Pool = PoolKind.Avg,
        Moe = new MoeConfig
        {
            Kind = MoeKind.Sphero, Layers = [1], CoreExperts = 3, UniversalExperts = 3,
            ExpertDropout = 0, MoeDropPathRate = 0, NoiseStd = 0,
        },
    });

    readonly string dir = Directory.CreateTempSubdirectory("jetpack-image-ranks-").FullName;
    readonly ImageTree tree;

    public ImageDataRanksTests() =>
        tree = ImageTreeGenerator.Write(Path.Combine(dir, "imagenet"), classes: 4, trainPerClass: 8, valPerClass: 1, maxSide: 480);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    WorkerJobSpec Spec(RunData data, long steps) => new()
    {
        ModelSpecJson = JsonSerializer.Serialize(Tiny, ModelSpec.Json),
        Data = data,
        Recipe = new TrainerOptions { Steps = steps, GlobalBatch = GlobalBatch, WarmupSteps = 1, Seed = 7, Mixup = null },
        Out = Path.Combine(dir, "run-" + data.Dataset),
        CheckpointEvery = 1000,
    };

    static RunData Data(string dataset, string root) => new()
    {
        Dataset = dataset, Root = root, RandAugment = false, RandomErasing = false, Workers = 1, Prefetch = 2, MaxBadFraction = 0.1, ShuffleBuffer = 6,
    };

    async Task<(ClusterOutcome Outcome, string[] Metrics)> Run(string job, WorkerJobSpec spec)
    {
        await using var launcher = await WorkerLauncher.StartAsync(new LaunchOptions { WorldSize = World, ThreadsPerWorker = 1, JobId = job, StepDeadline = TimeSpan.FromSeconds(120) });
        var outcome = await launcher.RunJobAsync(spec);
        Assert.True(outcome.Completed, outcome.Failure + "\n" + launcher.Report());
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var metrics = await Task.WhenAll(launcher.MetricsAddresses.Select(a => http.GetStringAsync($"http://{a}/metrics")));
        return (outcome, metrics);
    }

    static void AssertFinalEvaluation(ClusterOutcome outcome, int valImages)
    {
        for (int r = 0; r < World; r++)
        {
            var last = outcome.Progress[r][^1];
            Assert.True(last.Evaluated, $"rank {r}: the last step evaluates");
            Assert.Equal(valImages, last.EvalImages);
            Assert.Equal(outcome.Rank0[^1].Top1, last.Top1);                   // all-reduced: the same on every rank
        }
    }

    [Fact]
    public async Task TwoWorkersTrainAnEpochOfClassFoldersEachReadingItsSliceOfEveryBatch()
    {
        var data = Data("imagefolder", tree.Root);
        long steps = tree.TrainImages / GlobalBatch;                              // one epoch (the last partial batch dropped)
        var (outcome, metrics) = await Run("imagefolder-ranks", Spec(data, steps));
        long together = 0;
        for (int r = 0; r < World; r++)
        {
            long expected = steps * DistributedSampler.RankSlice(GlobalBatch, World, r).Length;
            Assert.Equal(expected, outcome.Progress[r][^1].ImagesRead);
            Assert.Equal(expected, PrometheusSample.Value(metrics[r], MetricNames.DataImagesRead, ("rank", r.ToString())));
            together += outcome.Progress[r][^1].ImagesRead;
        }
        Assert.Equal(steps * GlobalBatch, together);                              // the ranks' slices make up the epoch
        AssertFinalEvaluation(outcome, tree.ValImages);
        Assert.True(File.Exists(RunDatasets.IndexPath(RunDatasets.IndexDir(Path.Combine(dir, "run-imagefolder"))!, "train")), "the index is kept beside the run");
    }

    [Fact]
    public async Task TwoWorkersTrainFromPackedShardsEachReadingOnlyItsOwnShards()
    {
        string packed = Path.Combine(dir, "shards");
        ShardPacker.Pack(tree.Root, packed, ShardPacker.ParseSize("64KiB"));
        var data = Data("shards", packed);
        using var shards = new ShardDataset(packed, "train", EvalTransform.ImageNet(32)) { ShuffleBuffer = data.ShuffleBuffer };
        Assert.True(shards.Shards.Count >= 2 * World, $"the fixture packs into {shards.Shards.Count} train shards, want ≥ {2 * World}");
        int perStep = GlobalBatch / World;
        // every rank reads at most one pass of its own shards: each of its samples at most once
        long steps = Enumerable.Range(0, World).Min(r => shards.StreamFor(World, r, perStep, 7).Count) / perStep;
        var (outcome, metrics) = await Run("shards-ranks", Spec(data, steps));
        var shardOf = shards.ShardSizes.SelectMany((size, s) => Enumerable.Repeat(s, size)).ToArray();
        for (int r = 0; r < World; r++)
        {
            Assert.Equal(steps * perStep, outcome.Progress[r][^1].ImagesRead);
            Assert.Equal(steps * perStep, PrometheusSample.Value(metrics[r], MetricNames.DataImagesRead, ("rank", r.ToString())));
            // the shards this rank's stream touches, computed here from (seed, rank) alone: the worker read exactly those
            var stream = shards.StreamFor(World, r, perStep, 7);
            var touched = stream.Take(0, (int)(steps * perStep)).Select(i => shardOf[i]).Distinct().ToList();
            Assert.All(touched, s => Assert.Equal(r, s % World));
            Assert.Equal(touched.Count, PrometheusSample.Value(metrics[r], MetricNames.DataShardsRead, ("rank", r.ToString())));
        }
        AssertFinalEvaluation(outcome, tree.ValImages);
    }
}
