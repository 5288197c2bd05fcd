using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using static Jetpack.Model.Tests.Data.Augment.AugmentTestImages;
using static TorchSharp.torch;

namespace Jetpack.Model.Tests.Data.Augment;

/// <summary>The composed train transform (spec §7.2): shapes, per-sample reproducibility, stages switchable.</summary>
public sealed class TrainTransformTests
{
    private static readonly Jetpack.Model.Data.ImagePixels Photo = Make(160, 120, 3, (x, y, c) => (x * 3 + y * 5 + c * 70 + (x * y) % 17) % 256);

    [Fact]
    public void SameSeedSameOutputDifferentIndexDifferentOutput()
    {
        var transform = new TrainTransform(AugmentOptions.ImageNet(64));
        using var scope = NewDisposeScope();
        ulong seed = AugmentRandom.SampleSeed(3407, 2, 17);
        var a = transform.Apply(Photo, seed);
        var b = transform.Apply(Photo, AugmentRandom.SampleSeed(3407, 2, 17));
        Assert.Equal(new long[] { 3, 64, 64 }, a.shape);
        Assert.True(Same(a, b));
        Assert.False(Same(a, transform.Apply(Photo, AugmentRandom.SampleSeed(3407, 2, 18))));
        Assert.False(Same(a, transform.Apply(Photo, AugmentRandom.SampleSeed(3407, 3, 17))));
        Assert.False(Same(a, transform.Apply(Photo, AugmentRandom.SampleSeed(1, 2, 17))));
    }

    [Fact]
    public void ResultDoesNotDependOnTheThread()
    {
        var transform = new TrainTransform(AugmentOptions.ImageNet(32));
        var serial = Enumerable.Range(0, 16).Select(i => Sum(transform.Apply(Photo, AugmentRandom.SampleSeed(7, 0, i)))).ToArray();
        var parallel = new double[16];
        Parallel.For(0, 16, new ParallelOptions { MaxDegreeOfParallelism = 4 },
            i => parallel[i] = Sum(transform.Apply(Photo, AugmentRandom.SampleSeed(7, 0, i))));
        Assert.Equal(serial, parallel);
    }

    [Fact]
    public void WithEveryStageOffItIsScaleAndNormalise()
    {
        var options = new AugmentOptions { Size = null, Crop = null, FlipProbability = 0, RandAugment = null, Erasing = null };
        var transform = new TrainTransform(options);
        using var scope = NewDisposeScope();
        var expected = EvalTransform.ScaleNormalize(EvalTransform.ImageNetMean, EvalTransform.ImageNetStd).Apply(Photo);
        Assert.True(Same(expected, transform.Apply(Photo, 5)));
        Assert.True(Same(expected, transform.Apply(Photo)));
    }

    [Fact]
    public void FlipOnlyFlipsAboutHalfTheTime()
    {
        var options = new AugmentOptions { Size = null, Crop = null, RandAugment = null, Erasing = null };
        var transform = new TrainTransform(options);
        int flipped = 0;
        for (int i = 0; i < 100; i++)
        {
            using var g = new Generator((ulong)i);
            var output = transform.Augment8Bit(Photo, new AugmentRandom(g));
            if (output.Data.SequenceEqual(PixelOps.FlipHorizontal(Photo).Data)) flipped++;
            else Assert.Equal(Photo.Data, output.Data);
        }
        Assert.InRange(flipped, 30, 70);
    }

    [Fact]
    public void FashionMnistPathKeepsOneChannelAt28()
    {
        var transform = new TrainTransform(AugmentOptions.FashionMnist());
        Assert.Equal(1, transform.Channels);
        var image = Make(28, 28, 1, (x, y, _) => x > 6 && x < 20 && y > 4 && y < 24 ? 220 : 0);
        using var scope = NewDisposeScope();
        for (long i = 0; i < 10; i++)
            Assert.Equal(new long[] { 1, 28, 28 }, transform.Apply(image, AugmentRandom.SampleSeed(0, 0, i)).shape);
    }

    [Fact]
    public void RejectsMismatchedChannelsAndBadOptions()
    {
        var transform = new TrainTransform(AugmentOptions.ImageNet(32));
        Assert.Throws<ArgumentException>(() => transform.Apply(Make(8, 8, 1, (_, _, _) => 0), 1));
        Assert.Throws<ArgumentException>(() => new TrainTransform(new AugmentOptions { Size = null }));
        Assert.Throws<ArgumentException>(() => new TrainTransform(new AugmentOptions { Channels = 1 }));
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.allclose(b, rtol: 0, atol: 0);

    private static double Sum(Tensor t)
    {
        using (t) return t.to(ScalarType.Float64).sum().item<double>();
    }
}
