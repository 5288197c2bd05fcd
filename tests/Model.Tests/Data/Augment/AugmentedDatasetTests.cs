using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using Jetpack.Model.Tests.Checkpoints;

namespace Jetpack.Model.Tests.Data.Augment;

public class AugmentedDatasetTests
{
    [Fact]
    public void ImageFolderBatchesAugmentAsAFunctionOfTheBatchSeed()
    {
        using var dir = new TempDirectory();
        foreach (var (cls, colour) in new[] { ("a", (byte)30), ("b", (byte)200) })
        {
            Directory.CreateDirectory(Path.Combine(dir.FullPath, cls));
            for (int i = 0; i < 3; i++)
                File.WriteAllBytes(Path.Combine(dir.FullPath, cls, $"{i}.png"),
                    TestImages.Png(48, 40, (x, y) => ((byte)(colour + x), (byte)(y * 3), (byte)(x * y % 255), 255)));
        }
        var source = new ImageFolderDataset(dir.FullPath, EvalTransform.ImageNet(32));
        var data = new AugmentedDataset(source, new TrainTransform(AugmentOptions.ImageNet(32)));
        using var scope = NewDisposeScope();
        int[] idx = [0, 3, 5];
        var (a, la) = data.Batch(idx, 7);
        var (b, _) = data.Batch(idx, 7);
        var (c, _) = data.Batch(idx, 8);
        Assert.Equal(new long[] { 3, 3, 32, 32 }, a.shape);
        Assert.True(a.eq(b).all().item<bool>());       // same seed, same augmentation (on any thread)
        Assert.False(a.eq(c).all().item<bool>());      // another step, another augmentation
        Assert.Equal(new long[] { 0, 1, 1 }, la.data<long>().ToArray());

        // Expert parallelism: a rank loads a slice of the batch, and a rank's Mixup partners are
        // another slice in reverse; an image must augment the same wherever it sits.
        var (tail, _) = data.Batch([5, 3], 7);
        Assert.True(tail[0].eq(a[2]).all().item<bool>() && tail[1].eq(a[1]).all().item<bool>());
    }

    /// <summary>A batch written into a reused buffer by several threads equals the per-image transform, sample by sample.</summary>
    [Fact]
    public void BatchesEqualThePerImageTransform()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(dir.FullPath, "a"));
        for (int i = 0; i < 6; i++)
            File.WriteAllBytes(Path.Combine(dir.FullPath, "a", $"{i}.jpg"),
                TestImages.Jpeg(120 + 40 * i, 300 - 30 * i, (x, y) => ((byte)(x + 9 * i), (byte)(2 * y), (byte)(x * y % 251), 255)));
        var source = new ImageFolderDataset(dir.FullPath, EvalTransform.ImageNet(32));
        var transform = new TrainTransform(AugmentOptions.ImageNet(32));    // crop, flip, RandAugment, erasing
        var data = new AugmentedDataset(source, transform, workers: 3);
        using var scope = NewDisposeScope();
        int[] idx = [4, 0, 5, 2, 1];
        var (batch, _) = data.Batch(idx, 11);                                  // [5, 3, 32, 32]
        for (int i = 0; i < idx.Length; i++)
        {
            using var image = source.Open(idx[i]);
            var one = transform.Apply(image, AugmentRandom.SampleSeed(11, 0, idx[i]));
            Assert.True(batch[i].eq(one).all().item<bool>(), $"sample {i} (index {idx[i]}) differs");
        }

        // eval batches: the same through the batch buffer as one image at a time
        var (evalBatch, _) = source.Batch(idx);
        for (int i = 0; i < idx.Length; i++)
            Assert.True(evalBatch[i].eq(source.Get(idx[i]).Image).all().item<bool>());
    }
}
