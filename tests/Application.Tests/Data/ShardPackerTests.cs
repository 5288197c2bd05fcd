using System.Security.Cryptography;
using Jetpack.Application.Data;
using Jetpack.Application.Runs;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Fixtures;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;
using TorchSharp;

namespace Jetpack.Application.Tests.Data;

/// <summary>`data pack` into WebDataset shards: verified images only, resumable to the same bytes, read back as the same samples, trainable.</summary>
public sealed class ShardPackerTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("jetpack-shards-").FullName;
    readonly ImageTree tree;

    public ShardPackerTests() => tree = ImageTreeGenerator.Write(Path.Combine(dir, "imagenet"), classes: 3, trainPerClass: 6, valPerClass: 2, maxSide: 300);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static Dictionary<string, string> Hashes(string outDir) =>
        Directory.GetFiles(outDir, "*.tar").ToDictionary(f => Path.GetFileName(f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    [Fact]
    public void PackedShardsHoldEveryDecodableImageWithItsLabelAndAResumedPackIsIdentical()
    {
        string whole = Path.Combine(dir, "whole");
        var result = ShardPacker.Pack(tree.Root, whole, ShardPacker.ParseSize("96KiB"));
        Assert.True(ShardDataset.ShardFiles(whole, "train").Length > 1, "several train shards");
        Assert.Equal(tree.TrainImages - 2, result.Written["train"]);
        Assert.Equal(2, result.Skipped.Count);
        Assert.Contains(result.Skipped, s => s.Contains(tree.Truncated));
        Assert.Contains(result.Skipped, s => s.Contains(tree.Empty));

        var folder = new ImageFolderDataset(Path.Combine(tree.Root, "train"), EvalTransform.ImageNet(32));
        var good = Enumerable.Range(0, folder.Count).Where(i => !tree.BadFiles.Contains(folder.PathOf(i))).ToList();
        using var shards = new ShardDataset(whole, "train", EvalTransform.ImageNet(32));
        Assert.Equal(tree.Classes, shards.ClassNames);
        Assert.Equal(good.Count, shards.Count);
        for (int i = 0; i < shards.Count; i++)
        {
            Assert.Equal(folder.LabelOf(good[i]), shards.LabelOf(i));
            if (i % 5 == 0) Assert.Equal(ImageDecoder.Decode(folder.PathOf(good[i]), 3).Data, shards.PixelsOf(i).Data);
        }

        // Interrupted after 10 images, then run again: continues after the completed shards, same bytes.
        string resumed = Path.Combine(dir, "resumed");
        using (var stop = new CancellationTokenSource())
        {
            var progress = new SyncProgress(p => { if (p.Done >= 10) stop.Cancel(); });
            Assert.ThrowsAny<OperationCanceledException>(() => ShardPacker.Pack(tree.Root, resumed, ShardPacker.ParseSize("96KiB"), progress, stop.Token));
        }
        var again = ShardPacker.Pack(tree.Root, resumed, ShardPacker.ParseSize("96KiB"));
        Assert.True(again.Resumed > 0);
        Assert.Equal(Hashes(whole), Hashes(resumed));
        Assert.Empty(Directory.GetFiles(resumed, "*.tmp"));
    }

    sealed class SyncProgress(Action<(long Done, long Total)> report) : IProgress<(long Done, long Total)>
    {
        public void Report((long Done, long Total) value) => report(value);
    }

    [Fact]
    public void ARunTrainsFromShards()
    {
        string packed = Path.Combine(dir, "packed");
        ShardPacker.Pack(tree.Root, packed, ShardPacker.ParseSize("1MB"));
        var spec = new ModelSpec("tiny_shards", Vit: new VitConfig
        {
            ImageSize = 32, PatchSize = 8, InChannels = 3, NumClasses = 3, Dim = 16, Depth = 1, Heads = 2, Pool = PoolKind.Avg,
        });
        var run = new RunSpec { Data = new RunData { Dataset = "shards", Root = packed, RandAugment = false, RandomErasing = false } };
        run.CheckFit("run.yaml", spec);
        var (train, eval) = RunDatasets.Open(run.Data, spec);
        Assert.Equal(tree.TrainImages - 2, train.Count);
        Assert.Equal(tree.ValImages, eval.Count);
        torch.manual_seed(1);
        using var model = ModelRegistry.Create(spec);
        using var trainer = new Trainer(spec, model, train, new TrainerOptions { Steps = 2, GlobalBatch = 4, WarmupSteps = 1 });
        var last = trainer.TrainStep();
        last = trainer.TrainStep();
        Assert.True(double.IsFinite(last.Loss));
        Assert.Equal(8, last.ImagesRead);
        Assert.Equal(tree.ValImages, trainer.Evaluate(eval).Images);
    }

    [Theory]
    [InlineData("1GB", 1_000_000_000L)]
    [InlineData("512MiB", 512L << 20)]
    [InlineData("65536", 65536L)]
    [InlineData("1.5 GB", 1_500_000_000L)]
    public void ShardSizesParse(string text, long bytes) => Assert.Equal(bytes, ShardPacker.ParseSize(text));

    [Fact]
    public void ABadShardSizeIsNamed() => Assert.Contains("--shard-size", Assert.Throws<ArgumentException>(() => ShardPacker.ParseSize("lots")).Message);
}
