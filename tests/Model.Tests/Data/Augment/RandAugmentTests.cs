using Jetpack.Model.Data.Augment;
using TorchSharp;
using static Jetpack.Model.Tests.Data.Augment.AugmentTestImages;

namespace Jetpack.Model.Tests.Data.Augment;

/// <summary>The magnitude → parameter table of timm's increasing RandAugment (spec §7.2).</summary>
public sealed class RandAugmentTests
{
    private static readonly byte[] Fill = [124, 116, 104];

    public static TheoryData<RandAugmentOp> OpsWithMagnitude() =>
    [
        RandAugmentOp.Rotate, RandAugmentOp.SolarizeIncreasing, RandAugmentOp.SolarizeAdd,
        RandAugmentOp.ColorIncreasing, RandAugmentOp.ContrastIncreasing, RandAugmentOp.BrightnessIncreasing,
        RandAugmentOp.SharpnessIncreasing, RandAugmentOp.ShearX, RandAugmentOp.ShearY,
        RandAugmentOp.TranslateXRel, RandAugmentOp.TranslateYRel,
    ];

    [Theory]
    [MemberData(nameof(OpsWithMagnitude))]
    public void MagnitudeZeroIsTheIdentity(RandAugmentOp op)
    {
        var image = Gradient();
        Assert.Equal(image.Data, RandAugment.ApplyOp(op, image, 0, negate: false, Fill).Data);
        Assert.Equal(image.Data, RandAugment.ApplyOp(op, image, 0, negate: true, Fill).Data);
    }

    [Fact]
    public void PosterizeIncreasingKeepsFourBitsAtZeroAndNoneAtTheMaximum()
    {
        var image = Gradient();
        Assert.Equal(PixelOps.Posterize(image, 4).Data, RandAugment.ApplyOp(RandAugmentOp.PosterizeIncreasing, image, 0, false, Fill).Data);
        Assert.Equal(PixelOps.Posterize(image, 1).Data, RandAugment.ApplyOp(RandAugmentOp.PosterizeIncreasing, image, 0.9, false, Fill).Data);
        Assert.All(RandAugment.ApplyOp(RandAugmentOp.PosterizeIncreasing, image, 1, false, Fill).Data, v => Assert.Equal(0, v));
    }

    [Fact]
    public void ParametersFollowTheTable()
    {
        var image = Gradient();
        double r = 0.9;   // magnitude 9 of 10
        Assert.Equal(PixelOps.Solarize(image, 256 - 230).Data, RandAugment.ApplyOp(RandAugmentOp.SolarizeIncreasing, image, r, false, Fill).Data);
        Assert.Equal(PixelOps.SolarizeAdd(image, 99).Data, RandAugment.ApplyOp(RandAugmentOp.SolarizeAdd, image, r, false, Fill).Data);
        Assert.Equal(PixelOps.Brightness(image, 1.81).Data, RandAugment.ApplyOp(RandAugmentOp.BrightnessIncreasing, image, r, false, Fill).Data);
        Assert.Equal(PixelOps.Brightness(image, 1 - 0.81).Data, RandAugment.ApplyOp(RandAugmentOp.BrightnessIncreasing, image, r, true, Fill).Data);
        Assert.Equal(GeometricOps.Rotate(image, -27, Fill).Data, RandAugment.ApplyOp(RandAugmentOp.Rotate, image, r, true, Fill).Data);
        Assert.Equal(GeometricOps.ShearY(image, 0.27, Fill).Data, RandAugment.ApplyOp(RandAugmentOp.ShearY, image, r, false, Fill).Data);
        Assert.Equal(GeometricOps.TranslateX(image, 0.405 * 32, Fill).Data, RandAugment.ApplyOp(RandAugmentOp.TranslateXRel, image, r, false, Fill).Data);
        Assert.Equal(GeometricOps.TranslateY(image, -0.405 * 24, Fill).Data, RandAugment.ApplyOp(RandAugmentOp.TranslateYRel, image, r, true, Fill).Data);
    }

    [Fact]
    public void ZeroOpsOrZeroProbabilityLeavesTheImageAlone()
    {
        var image = Gradient();
        using var g = new torch.Generator(5);
        var random = new AugmentRandom(g);
        Assert.Equal(image.Data, new RandAugment(new RandAugmentOptions { Ops = 0 }).Apply(image, random).Data);
        Assert.Equal(image.Data, new RandAugment(new RandAugmentOptions { OpProbability = 0 }).Apply(image, random).Data);
    }

    [Fact]
    public void RandAugmentIsDeterministicPerSeedAndChangesMostImages()
    {
        var image = Gradient();
        var ra = new RandAugment(new RandAugmentOptions());
        int changed = 0;
        for (ulong seed = 0; seed < 40; seed++)
        {
            using var g1 = new torch.Generator(seed);
            using var g2 = new torch.Generator(seed);
            var a = ra.Apply(image, new AugmentRandom(g1));
            var b = ra.Apply(image, new AugmentRandom(g2));
            Assert.Equal(a.Data, b.Data);
            if (!a.Data.SequenceEqual(image.Data)) changed++;
        }
        // Each of 2 ops runs with p 0.5: about 3/4 of images change (a few ops may be no-ops on this image).
        Assert.InRange(changed, 18, 40);
    }

    [Fact]
    public void WorksOnOneChannel()
    {
        var image = Make(28, 28, 1, (x, y, _) => (x * y) % 256);
        foreach (var op in RandAugment.AllOps)
        {
            var output = RandAugment.ApplyOp(op, image, 0.9, false, [0]);
            Assert.Equal(1, output.Channels);
            Assert.Equal(28 * 28, output.Data.Length);
        }
    }
}
