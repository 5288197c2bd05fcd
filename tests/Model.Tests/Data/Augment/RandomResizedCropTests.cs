using Jetpack.Model.Data.Augment;
using TorchSharp;
using static Jetpack.Model.Tests.Data.Augment.AugmentTestImages;

namespace Jetpack.Model.Tests.Data.Augment;

/// <summary>RandomResizedCrop (spec §7.2): boxes inside the image within scale/ratio, fallback, output size.</summary>
public sealed class RandomResizedCropTests
{
    [Fact]
    public void BoxesLieInsideTheImageWithinScaleAndRatio()
    {
        var crop = new RandomResizedCrop(224, new RandomResizedCropOptions());
        using var g = new torch.Generator(11);
        var random = new AugmentRandom(g);
        const int W = 300, H = 200;
        for (int i = 0; i < 500; i++)
        {
            var (left, top, w, h) = crop.Box(W, H, random);
            Assert.InRange(left, 0, W - w);
            Assert.InRange(top, 0, H - h);
            Assert.InRange(w, 1, W);
            Assert.InRange(h, 1, H);
            // Rounding w and h to integers moves area and ratio slightly off the drawn values.
            Assert.InRange((double)w * h / (W * H), 0.08 * 0.9, 1.0);
            Assert.InRange((double)w / h, 0.75 * 0.85, 4.0 / 3.0 / 0.85);
        }
    }

    [Fact]
    public void FallsBackToTheCentreCropClampedToTheRatio()
    {
        // Full-area boxes of ratio 1 cannot fit a 100 × 50 image: the fallback is the centred 50 × 50.
        var crop = new RandomResizedCrop(16, new RandomResizedCropOptions { MinScale = 1, MaxScale = 1, MinRatio = 1, MaxRatio = 1 });
        using var g = new torch.Generator(3);
        Assert.Equal((25, 0, 50, 50), crop.Box(100, 50, new AugmentRandom(g)));
        Assert.Equal((0, 25, 50, 50), crop.Box(50, 100, new AugmentRandom(g)));
    }

    [Fact]
    public void OutputHasTheRequestedSizeAndTheCroppedContent()
    {
        var image = Make(120, 80, 3, (x, y, c) => x < 60 ? 10 + c : 200 + c);
        // Crop entirely inside the left half: a solid image at any size.
        var output = RandomResizedCrop.CropResize(image, 5, 10, 40, 30, 64);
        Assert.Equal((64, 64, 3), (output.Width, output.Height, output.Channels));
        for (int i = 0; i < output.Data.Length; i++) Assert.Equal(10 + i % 3, output.Data[i]);
        var crop = new RandomResizedCrop(224, new RandomResizedCropOptions());
        using var g = new torch.Generator(1);
        var random = new AugmentRandom(g);
        for (int i = 0; i < 5; i++)
        {
            var resized = crop.Apply(image, random);
            Assert.Equal((224, 224), (resized.Width, resized.Height));
        }
    }
}
