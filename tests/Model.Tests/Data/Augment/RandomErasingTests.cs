using Jetpack.Model.Data.Augment;
using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Tests.Data.Augment;

/// <summary>RandomErasing (spec §7.2): a rectangle with area 2–33% filled with N(0, 1) noise, nothing else touched.</summary>
public sealed class RandomErasingTests
{
    [Fact]
    public void ErasesOneRectangleOfAreaInRange()
    {
        var erasing = new RandomErasing(new RandomErasingOptions { Probability = 1 });
        using var g = new Generator(8);
        var random = new AugmentRandom(g);
        int erased = 0;
        for (int i = 0; i < 50; i++)
        {
            using var scope = NewDisposeScope();
            var image = zeros(3, 64, 48);
            var box = erasing.ApplyInPlace(image, random);
            if (box is not var (left, top, w, h)) { Assert.True(image.count_nonzero().item<long>() == 0); continue; }
            erased++;
            Assert.InRange((double)w * h / (64 * 48), 0.02 * 0.85, 1.0 / 3.0 * 1.15);
            Assert.InRange(left + w, 1, 48);
            Assert.InRange(top + h, 1, 64);
            var inside = image.narrow(1, top, h).narrow(2, left, w);
            Assert.Equal(3L * w * h, inside.count_nonzero().item<long>());
            Assert.Equal(3L * w * h, image.count_nonzero().item<long>());   // nothing outside the box
        }
        Assert.InRange(erased, 40, 50);   // the aspect draw rarely fails all 10 attempts
    }

    [Fact]
    public void NoiseIsStandardNormal()
    {
        var erasing = new RandomErasing(new RandomErasingOptions { Probability = 1, MinArea = 0.3, MaxArea = 0.33 });
        using var g = new Generator(2);
        using var scope = NewDisposeScope();
        var image = zeros(3, 200, 200);
        var (left, top, w, h) = erasing.ApplyInPlace(image, new AugmentRandom(g))!.Value;
        var noise = image.narrow(1, top, h).narrow(2, left, w);
        Assert.InRange(noise.mean().item<float>(), -0.05f, 0.05f);
        Assert.InRange(noise.std().item<float>(), 0.95f, 1.05f);
    }

    [Fact]
    public void ProbabilityZeroNeverErases()
    {
        var erasing = new RandomErasing(new RandomErasingOptions { Probability = 0 });
        using var g = new Generator(1);
        using var scope = NewDisposeScope();
        var image = zeros(1, 28, 28);
        for (int i = 0; i < 20; i++) Assert.Null(erasing.ApplyInPlace(image, new AugmentRandom(g)));
        Assert.Equal(0L, image.count_nonzero().item<long>());
    }
}
