using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using static Jetpack.Model.Tests.Data.Augment.AugmentTestImages;

namespace Jetpack.Model.Tests.Data.Augment;

/// <summary>RandAugment's colour ops (spec §7.2) against PIL's definitions on known pixels.</summary>
public sealed class PixelOpsTests
{
    [Fact]
    public void InvertIs255MinusX()
    {
        var image = Gradient();
        var inverted = PixelOps.Invert(image);
        Assert.Equal(image.Data.Select(v => (byte)(255 - v)), inverted.Data);
    }

    [Fact]
    public void PosterizeKeepsTheTopBits()
    {
        var image = Make(4, 1, 1, (x, _, _) => new[] { 0b1011_1011, 255, 15, 16 }[x]);
        Assert.Equal(new byte[] { 0b1011_0000, 0b1111_0000, 0, 16 }, PixelOps.Posterize(image, 4).Data);
        Assert.Equal(new byte[] { 0b1000_0000, 128, 0, 0 }, PixelOps.Posterize(image, 1).Data);
        Assert.Equal(image.Data, PixelOps.Posterize(image, 8).Data);
        Assert.All(PixelOps.Posterize(image, 0).Data, v => Assert.Equal(0, v));
    }

    [Fact]
    public void SolarizeInvertsValuesAtOrAboveTheThreshold()
    {
        var image = Make(5, 1, 1, (x, _, _) => new[] { 0, 100, 127, 128, 200 }[x]);
        Assert.Equal(new byte[] { 0, 100, 127, 127, 55 }, PixelOps.Solarize(image, 128).Data);
        Assert.Equal(image.Data, PixelOps.Solarize(image, 256).Data);
        Assert.Equal(new byte[] { 255, 155, 128, 127, 55 }, PixelOps.Solarize(image, 0).Data);
    }

    [Fact]
    public void SolarizeAddRaisesOnlyValuesBelow128AndClips()
    {
        var image = Make(5, 1, 1, (x, _, _) => new[] { 0, 100, 127, 128, 250 }[x]);
        Assert.Equal(new byte[] { 50, 150, 177, 128, 250 }, PixelOps.SolarizeAdd(image, 50).Data);
        Assert.Equal(new byte[] { 110, 210, 237, 128, 250 }, PixelOps.SolarizeAdd(image, 110).Data);
        var high = Make(1, 1, 1, (_, _, _) => 120);
        Assert.Equal(new byte[] { 230 }, PixelOps.SolarizeAdd(high, 110).Data);
    }

    [Fact]
    public void EqualizeOfATwoLevelImageSpreadsToTheExtremes()
    {
        // 510 pixels, half 50 and half 200: step = (510 − 255) div 255 = 1, lut[50] = 0, lut[200] = 255.
        var image = Make(30, 17, 1, (x, y, _) => (x + y * 30) % 2 == 0 ? 50 : 200);
        var equalized = PixelOps.Equalize(image);
        for (int i = 0; i < image.Data.Length; i++)
            Assert.Equal(image.Data[i] == 50 ? 0 : 255, equalized.Data[i]);
    }

    [Fact]
    public void EqualizeLeavesAFlatChannelAlone()
    {
        var image = Make(8, 8, 3, (x, _, c) => c == 0 ? 77 : x * 30);
        var equalized = PixelOps.Equalize(image);
        for (int i = 0; i < image.Data.Length; i += 3) Assert.Equal(77, equalized.Data[i]);
    }

    [Fact]
    public void AutoContrastStretchesEachChannelToTheFullRange()
    {
        var image = Make(101, 1, 3, (x, _, c) => c == 2 ? 9 : 50 + x);   // channels 0, 1: 50..150; channel 2 flat
        var stretched = PixelOps.AutoContrast(image);
        for (int x = 0; x <= 100; x++)
        {
            Assert.Equal((int)((50 + x) * 2.55 + -50 * 2.55), At(stretched, x, 0, 0));   // PIL: int(i · scale + offset)
            Assert.Equal(9, At(stretched, x, 0, 2));
        }
        Assert.Equal(0, At(stretched, 0, 0, 1));
        Assert.Equal(255, At(stretched, 100, 0, 1));
    }

    [Fact]
    public void EnhancementsBlendTowardsTheirDegenerateImage()
    {
        var image = Gradient();
        foreach (var op in new Func<ImagePixels, double, ImagePixels>[] { PixelOps.Color, PixelOps.Contrast, PixelOps.Brightness, PixelOps.Sharpness })
            Assert.Equal(image.Data, op(image, 1.0).Data);
        Assert.All(PixelOps.Brightness(image, 0).Data, v => Assert.Equal(0, v));
        Assert.Equal(image.Data.Select(v => (byte)(v / 2)), PixelOps.Brightness(image, 0.5).Data);   // truncated like PIL
        var gray = PixelOps.Color(image, 0);
        Assert.Equal(image.WithChannels(1).WithChannels(3).Data, gray.Data);
        var flat = PixelOps.Contrast(image, 0);
        Assert.Single(flat.Data.Distinct());
        var solid = Make(9, 9, 3, (_, _, c) => 40 + c);
        Assert.Equal(solid.Data, PixelOps.Sharpness(solid, 1.9).Data);   // a flat image has nothing to sharpen
    }

    [Fact]
    public void FlipMirrorsColumns()
    {
        var image = Gradient(7, 5);
        var flipped = PixelOps.FlipHorizontal(image);
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 7; x++)
                for (int c = 0; c < 3; c++)
                    Assert.Equal(At(image, 6 - x, y, c), At(flipped, x, y, c));
    }
}
