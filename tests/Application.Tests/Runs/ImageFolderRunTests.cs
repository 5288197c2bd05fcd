using Jetpack.Application.Runs;
using Jetpack.Application.Training;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using Jetpack.Model.Data.Fixtures;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;
using TorchSharp;

namespace Jetpack.Application.Tests.Runs;

/// <summary>
/// Training from a generated ImageNet-like tree (data.dataset: imagefolder): the index beside the run,
/// the quirk files, mid-epoch resume equal to an uninterrupted run, the fit check of model and data.
/// </summary>
public sealed class ImageFolderRunTests : IDisposable
{
    static readonly ModelSpec Tiny = new("tiny_imagefolder", Vit: new VitConfig
    {
        ImageSize = 32, PatchSize = 8, InChannels = 3, NumClasses = 4, Dim = 16, Depth = 1, Heads = 2, Pool = PoolKind.Avg,
    });

    readonly string dir = Directory.CreateTempSubdirectory("jetpack-imagefolder-").FullName;
    readonly ImageTree tree;

    public ImageFolderRunTests() => tree = ImageTreeGenerator.Write(Path.Combine(dir, "imagenet"), classes: 4, trainPerClass: 6, valPerClass: 2, maxSide: 320);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    RunData Data(double maxBad = 0.1) => new()
    {
        Dataset = "imagefolder", Root = tree.Root, RandAugment = false, RandomErasing = false, Workers = 2, Prefetch = 2, MaxBadFraction = maxBad,
    };

    [Fact]
    public void TheTreeIsIndexedOnceBesideTheRunAndItsQuirksDecodeOrAreCounted()
    {
        var log = new List<string>();
        string index = Path.Combine(dir, "run", "data-index");
        var (train, eval) = RunDatasets.Open(Data(), Tiny, index, log.Add);
        Assert.Equal(tree.TrainImages, train.Count);
        Assert.Equal(tree.ValImages, eval.Count);
        Assert.Equal(tree.Classes, train.ClassNames);
        Assert.True(File.Exists(RunDatasets.IndexPath(index, "train")) && File.Exists(RunDatasets.IndexPath(index, "val")));
        Assert.Empty(log);

        // every train image once: CMYK, grayscale and the PNG named .JPEG decode; truncated and empty are substituted and counted
        var seeded = (ISeededBatches)train;
        var (images, labels) = seeded.Batch([.. Enumerable.Range(0, train.Count)], 3);
        using (images) using (labels)
        {
            Assert.Equal(new long[] { train.Count, 3, 32, 32 }, images.shape);
            Assert.False(images.isnan().any().item<bool>());
        }
        var bad = ((IEncodedSource)((AugmentedDataset)train).Source).BadFiles;
        Assert.Equal(tree.BadFiles.Order(StringComparer.Ordinal), bad.Paths);
        Assert.Equal(2, log.Count(l => l.StartsWith("skipped undecodable image", StringComparison.Ordinal)));

        // a second start (another rank, a restart) reads the index instead of walking the tree
        var stamp = File.GetLastWriteTimeUtc(RunDatasets.IndexPath(index, "train"));
        log.Clear();
        var (again, _) = RunDatasets.Open(Data(), Tiny, index, log.Add);
        Assert.Equal(train.Count, again.Count);
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(RunDatasets.IndexPath(index, "train")));
        Assert.Empty(log);
    }

    [Fact]
    public void TooManyBadFilesFailNamingThem()
    {
        // 2 bad of 29: a fraction of 0.05 allows 1
        var (train, _) = RunDatasets.Open(Data(maxBad: 0.05), Tiny);
        var error = Assert.Throws<TooManyBadFilesException>(() => ((ISeededBatches)train).Batch([.. Enumerable.Range(0, train.Count)], 3));
        Assert.Contains(tree.Truncated, error.Message);
        Assert.Contains(tree.Empty, error.Message);
        Assert.Contains("data.max_bad_fraction", error.Message);
    }

    /// <summary>Records every batch the trainer loads (labels and a checksum of the pixels), in load order.</summary>
    sealed class Recording(IImageDataset inner) : IImageDataset, ISeededBatches
    {
        public readonly List<string> Batches = [];
        public int Count => inner.Count;
        public int NumClasses => inner.NumClasses;
        public IReadOnlyList<string> ClassNames => inner.ClassNames;
        public int LabelOf(int index) => inner.LabelOf(index);
        public (torch.Tensor Image, int Label) Get(int index) => inner.Get(index);
        public (torch.Tensor Images, torch.Tensor Labels) Batch(IReadOnlyList<int> indices) => Batch(indices, 0);
        public (torch.Tensor Images, torch.Tensor Labels) Batch(IReadOnlyList<int> indices, ulong batchSeed)
        {
            var (images, labels) = ((ISeededBatches)inner).Batch(indices, batchSeed);
            lock (Batches) Batches.Add($"[{string.Join(",", indices)}] {images.sum().item<float>():R}");
            return (images, labels);
        }
    }

    [Fact]
    public void AMidEpochResumeSeesExactlyTheUninterruptedBatchesAndLosses()
    {
        var recipe = new TrainerOptions { Steps = 6, GlobalBatch = 8, WarmupSteps = 1, Seed = 11 };    // 29 images: 3 steps per epoch
        var spec = RunSpec.WithoutRandomness(Tiny);
        (List<double> Losses, Recording Data, StepResult Last) Train(long from, long to, string? restore, string? save)
        {
            var (train, _) = RunDatasets.Open(Data(), spec);
            var recording = new Recording(train);
            torch.manual_seed(11);
            using var model = ModelRegistry.Create(spec);
            using var trainer = new Trainer(spec, model, recording, recipe, prefetch: 2);
            if (restore is not null) trainer.Restore(restore);
            Assert.Equal(from, trainer.Step);
            var losses = new List<double>();
            StepResult last = null!;
            while (trainer.Step < to) { last = trainer.TrainStep(); losses.Add(last.Loss); }
            if (save is not null) trainer.Save(save);
            return (losses, recording, last);
        }

        var whole = Train(0, 6, null, null);
        string checkpoint = Path.Combine(dir, "checkpoint");
        var first = Train(0, 4, null, checkpoint);                       // step 4 is mid-epoch 1
        var second = Train(4, 6, checkpoint, null);

        Assert.Equal(whole.Losses, first.Losses.Concat(second.Losses));
        Assert.Equal(whole.Data.Batches[4..6], second.Data.Batches[..2]);  // the resumed run's first loads are steps 5 and 6: nothing before is decoded
        Assert.Equal(whole.Data.Batches[..4], first.Data.Batches[..4]);
        Assert.Equal(2 * 8, second.Last.ImagesRead);                      // this process read only its two steps
        Assert.True(whole.Last.DataWaitSeconds >= 0);
    }

    [Fact]
    public void AModelAndDataThatDoNotFitAreRefusedAtSubmitNamingTheField()
    {
        var cifar = new RunSpec { Model = "vit_tiny_patch16_224", Data = new RunData { Dataset = "cifar100", Root = dir } };
        var e = Assert.Throws<RunSpecException>(() => cifar.Validate("job.yaml"));
        Assert.Equal("data.image_size", e.Field);
        Assert.Contains("224", e.Message);
        (cifar with { Data = cifar.Data with { ImageSize = 224 } }).Validate("job.yaml");         // CIFAR at 224, said so: fine

        var gray = new RunSpec { Model = "vit_tiny_patch16_224", Data = new RunData { Dataset = "fashion-mnist" } };
        Assert.Equal("data.dataset", Assert.Throws<RunSpecException>(() => gray.Validate("job.yaml")).Field);

        var small = new RunSpec { Model = "vit_tiny_patch16_224", Data = Data() with { ImageSize = 160 } };
        Assert.Equal("data.image_size", Assert.Throws<RunSpecException>(() => small.Validate("job.yaml")).Field);
        (small with { Data = small.Data with { ImageSize = null } }).Validate("job.yaml");      // imagefolder follows the model's size

        var head = Assert.Throws<RunSpecException>(() => new RunSpec { Data = Data() }.CheckFit("job.yaml", Tiny with { Vit = Tiny.Vit! with { NumClasses = 3 } }));
        Assert.Equal("model", head.Field);
        Assert.Contains("4 classes", head.Message);
    }
}
