using Jetpack.Model.Data.Augment;
using static TorchSharp.torch;

namespace Jetpack.Model.Tests.Data.Augment;

/// <summary>Per-batch Mixup / CutMix with smoothed soft targets (spec §7.2).</summary>
public sealed class MixupCutmixTests
{
    private const int Classes = 10;

    private static (Tensor Images, Tensor Labels) Batch(int b = 6)
    {
        using var g = new Generator(99);
        var images = rand([b, 3, 20, 16], generator: g);
        var labels = tensor(Enumerable.Range(0, b).Select(i => (long)(i * 3 % Classes)).ToArray());
        return (images, labels);
    }

    [Fact]
    public void LabelSmoothingIsExact()
    {
        using var scope = NewDisposeScope();
        var targets = LabelSmoothing.Targets(tensor(new long[] { 2, 7 }), Classes, 0.1);   // [2, 10]
        var expected = full([2, Classes], 0.01f);
        expected[0, 2] = 0.91f;
        expected[1, 7] = 0.91f;
        Assert.True(targets.allclose(expected, rtol: 0, atol: 1e-7));
        var mixer = new MixupCutmix(new MixupCutmixOptions { MixupAlpha = null, CutmixAlpha = null });
        var (images, labels) = Batch();
        using var g = new Generator(1);
        var (mixed, soft, info) = mixer.Apply(images, labels, Classes, g);
        Assert.Equal(1.0, info.Lambda);
        Assert.True(mixed.allclose(images, rtol: 0, atol: 0));
        Assert.True(soft.allclose(LabelSmoothing.Targets(labels, Classes, 0.1), rtol: 0, atol: 0));
    }

    [Fact]
    public void CutmixPastesTheReversedBatchInTheBoxAndCorrectsLambda()
    {
        using var scope = NewDisposeScope();
        var mixer = new MixupCutmix(new MixupCutmixOptions { MixupAlpha = null, LabelSmoothing = 0 });
        var (images, labels) = Batch();
        var reversed = images.flip(0);
        for (ulong seed = 0; seed < 20; seed++)
        {
            using var g = new Generator(seed);
            var (mixed, targets, info) = mixer.Apply(images, labels, Classes, g);
            Assert.True(info.Cutmix);
            Assert.Equal(1.0 - info.Height * info.Width / (20.0 * 16.0), info.Lambda, 12);
            var mask = zeros(1, 1, 20, 16);
            if (info.Height > 0 && info.Width > 0) mask.narrow(2, info.Top, info.Height).narrow(3, info.Left, info.Width).fill_(1);
            var expected = images * (1 - mask) + reversed * mask;
            Assert.True(mixed.allclose(expected, rtol: 0, atol: 0));
            Assert.True(targets.sum(dim: 1).allclose(ones(6), rtol: 0, atol: 1e-6));
            // Without smoothing, sample 0's target is λ on its label and 1 − λ on the last sample's.
            var row = targets[0];
            if (labels[0].item<long>() != labels[5].item<long>())
            {
                Assert.Equal(info.Lambda, row[labels[0].item<long>()].item<float>(), 1e-6);
                Assert.Equal(1 - info.Lambda, row[labels[5].item<long>()].item<float>(), 1e-6);
            }
        }
    }

    [Fact]
    public void MixupBlendsWithTheReversedBatchAndSmoothsTargets()
    {
        using var scope = NewDisposeScope();
        var mixer = new MixupCutmix(new MixupCutmixOptions { CutmixAlpha = null });
        var (images, labels) = Batch();
        using var g = new Generator(4);
        var (mixed, targets, info) = mixer.Apply(images, labels, Classes, g);
        Assert.False(info.Cutmix);
        float lam = (float)info.Lambda;
        Assert.True(mixed.allclose(images * lam + images.flip(0) * (1 - lam), rtol: 0, atol: 1e-6));
        var smoothed = LabelSmoothing.Targets(labels, Classes, 0.1);
        Assert.True(targets.allclose(smoothed * lam + smoothed.flip(0) * (1 - lam), rtol: 0, atol: 1e-6));
        Assert.True(targets.sum(dim: 1).allclose(ones(6), rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void SwitchesBetweenMixupAndCutmixAboutEvenlyAndDeterministically()
    {
        using var scope = NewDisposeScope();
        var mixer = new MixupCutmix(new MixupCutmixOptions());
        var (images, labels) = Batch();
        int cutmix = 0;
        for (ulong seed = 0; seed < 200; seed++)
        {
            using var g1 = new Generator(seed);
            using var g2 = new Generator(seed);
            var a = mixer.Apply(images, labels, Classes, g1);
            var b = mixer.Apply(images, labels, Classes, g2);
            Assert.Equal(a.Info, b.Info);
            Assert.True(a.Images.allclose(b.Images, rtol: 0, atol: 0));
            if (a.Info.Cutmix) cutmix++;
        }
        Assert.InRange(cutmix, 70, 130);
    }

    [Fact]
    public void BetaSamplesHaveTheRightMoments()
    {
        using var g = new Generator(12);
        var random = new AugmentRandom(g);
        foreach (var (a, n) in new[] { (0.8, 20000), (1.0, 20000), (2.5, 20000) })
        {
            var samples = Enumerable.Range(0, n).Select(_ => random.Beta(a, a)).ToArray();
            double mean = samples.Average();
            double variance = samples.Select(s => (s - mean) * (s - mean)).Average();
            Assert.InRange(mean, 0.49, 0.51);
            Assert.InRange(variance, 0.97 / (4 * (2 * a + 1)), 1.03 / (4 * (2 * a + 1)));   // a² / ((2a)² (2a + 1))
            Assert.All(samples, s => Assert.InRange(s, 0.0, 1.0));
        }
    }
}
