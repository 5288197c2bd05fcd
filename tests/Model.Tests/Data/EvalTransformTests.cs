using Jetpack.Model.Data;
using Jetpack.Model.Tests.Checkpoints;
using TorchSharp;

namespace Jetpack.Model.Tests.Data;

/// <summary>The eval transform's sizes, crop and normalisation, on images whose pixel values are known.</summary>
public sealed class EvalTransformTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ResizeSideIsFloorOfSizeOverCropPctAsInTimm()
    {
        Assert.Equal(248, EvalTransform.Predecessor().ResizeShorterSide);   // 224 / 0.9 = 248.9
        Assert.Equal(256, EvalTransform.ImageNet().ResizeShorterSide);      // 224 / 0.875 = 256
        Assert.Equal(35, EvalTransform.Predecessor(32).ResizeShorterSide);  // 35.6
        Assert.Null(EvalTransform.ScaleNormalize([0.5f], [0.5f]).ResizeShorterSide);
    }

    [Fact]
    public void ResizedSizeTruncatesTheLongerSideLikeTorchvision()
    {
        Assert.Equal((330, 248), EvalTransform.ResizedSize(500, 375, 248)); // 248 · 500 / 375 = 330.7
        Assert.Equal((248, 330), EvalTransform.ResizedSize(375, 500, 248));
        Assert.Equal((248, 248), EvalTransform.ResizedSize(64, 64, 248));
    }

    [Fact]
    public void CropOffsetRoundsHalfToEvenLikePython()
    {
        Assert.Equal(12, EvalTransform.CropOffset(248, 224));
        Assert.Equal(2, EvalTransform.CropOffset(229, 224)); // round(2.5) = 2
        Assert.Equal(4, EvalTransform.CropOffset(231, 224)); // round(3.5) = 4
        Assert.Equal(0, EvalTransform.CropOffset(224, 224));
    }

    /// <summary>A solid colour survives the resize exactly, so every output value is ((v / 255) − mean) / std in float32.</summary>
    [Fact]
    public void SolidColourNormalisesExactly()
    {
        var path = _dir.WriteBytes("solid.png", TestImages.Png(50, 40, TestImages.Solid(200, 100, 7)));
        var transform = EvalTransform.ImageNet(24);
        using var image = transform.Apply(ImageDecoder.Decode(path, 3));

        Assert.Equal(new long[] { 3, 24, 24 }, image.shape);
        Assert.Equal(torch.ScalarType.Float32, image.dtype);
        byte[] rgb = [200, 100, 7];
        for (int c = 0; c < 3; c++)
        {
            float expected = (rgb[c] / 255f - EvalTransform.ImageNetMean[c]) / EvalTransform.ImageNetStd[c];
            using var channel = image[c];
            Assert.All(channel.data<float>().ToArray(), v => Assert.Equal(expected, v));
        }
    }

    /// <summary>
    /// 250 × 248 with R = x: the shorter side is already 248, so nothing is resampled and the 224
    /// crop starts at column round(26 / 2) = 13 and row 12.
    /// </summary>
    [Fact]
    public void CentreCropPicksTheCentre()
    {
        var path = _dir.WriteBytes("ramp.png", TestImages.Png(250, 248, (x, y) => ((byte)x, (byte)y, 0, 255)));
        using var image = EvalTransform.Predecessor().Apply(ImageDecoder.Decode(path, 3));

        Assert.Equal(new long[] { 3, 224, 224 }, image.shape);
        using var red = image[0];
        using var green = image[1];
        // Back to 8-bit: v = (x · 0.5 + 0.5) · 255.
        float[,] r = ToPixelValues(red), g = ToPixelValues(green);
        for (int i = 0; i < 224; i += 37)
        {
            Assert.Equal(13 + i, r[5, i]);
            Assert.Equal(12 + i, g[i, 5]);
        }
        Assert.Equal(13 + 223, r[0, 223]);
        Assert.Equal(12 + 223, g[223, 0]);
    }

    /// <summary>Only the centre square of a larger image is red: after resize and crop nothing blue is left.</summary>
    [Fact]
    public void CentreCropDropsTheBorder()
    {
        // 300 × 300 → resized to 248 (factor 0.827) → crop 224 keeps source pixels ~[14.5, 285.5).
        // Red covers [5, 295), so the crop lies well inside it even with the bicubic's reach.
        var path = _dir.WriteBytes("framed.png", TestImages.Png(300, 300,
            (x, y) => x is >= 5 and < 295 && y is >= 5 and < 295 ? ((byte)255, (byte)0, (byte)0, (byte)255) : ((byte)0, (byte)0, (byte)255, (byte)255)));
        using var image = EvalTransform.Predecessor().Apply(ImageDecoder.Decode(path, 3));
        using var red = image[0];
        using var blue = image[2];
        Assert.All(red.data<float>().ToArray(), v => Assert.Equal(1f, v));
        Assert.All(blue.data<float>().ToArray(), v => Assert.Equal(-1f, v));
    }

    [Fact]
    public void WithoutASizeOnlyScalesAndNormalises()
    {
        var pixels = new ImagePixels([0, 51, 255, 128], 2, 2, 1);
        using var image = EvalTransform.ScaleNormalize([0.5f], [0.25f]).Apply(pixels);
        Assert.Equal(new long[] { 1, 2, 2 }, image.shape);
        float[] expected = [.. new byte[] { 0, 51, 255, 128 }.Select(v => (v / 255f - 0.5f) / 0.25f)];
        Assert.Equal(expected, image.data<float>().ToArray());
    }

    [Fact]
    public void InvalidSettingsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new EvalTransform(0, 0.9, [0.5f], [0.5f]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new EvalTransform(224, 1.2, [0.5f], [0.5f]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new EvalTransform(224, 0, [0.5f], [0.5f]));
        Assert.Throws<ArgumentException>(() => new EvalTransform(224, 0.9, [0.5f, 0.5f], [0.5f, 0.5f]));
        Assert.Throws<ArgumentException>(() => new EvalTransform(224, 0.9, [0.5f], [0f]));
        var error = Assert.Throws<ArgumentException>(() => EvalTransform.Predecessor().Apply(new ImagePixels(new byte[4], 2, 2, 1)));
        Assert.Contains("3 channel", error.Message);
    }

    private static float[,] ToPixelValues(torch.Tensor plane)
    {
        var values = plane.data<float>().ToArray();
        int h = (int)plane.shape[0], w = (int)plane.shape[1];
        var result = new float[h, w];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                result[y, x] = MathF.Round((values[y * w + x] * 0.5f + 0.5f) * 255f);
        return result;
    }
}
