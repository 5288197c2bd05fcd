using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using Jetpack.Model.Data.Fixtures;
using Jetpack.Model.Tests.Checkpoints;
using SkiaSharp;

namespace Jetpack.Model.Tests.Data;

/// <summary>DCT-domain scaled decode: JPEGs are decoded no larger than the crop or resize needs, and the result stays the same picture.</summary>
public sealed class ScaledDecodeTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Jpeg(int width, int height)
    {
        var random = new SplitMix64(11);
        using var bitmap = ImageTreeGenerator.Draw(width, height, 1, ref random);
        using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
        var path = _dir.File($"{width}x{height}.jpg");
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    [Fact]
    public void AJpegIsDecodedAtTheSmallestScaleThatIsLargeEnough()
    {
        using var image = EncodedImage.Read(Jpeg(500, 375));
        var scaled = image.DecodeAtLeast(341, 256, 3);                    // the eval resize of 224 / 0.875 = 256 on the short side
        Assert.Equal((375, 282), (scaled.Width, scaled.Height));           // 6/8: ceil(500·6/8), ceil(375·6/8)
        var whole = image.DecodeAtLeast(490, 370, 3);
        Assert.Equal((500, 375), (whole.Width, whole.Height));
        var full = image.Decode(3);
        Assert.Equal((500, 375), (full.Width, full.Height));
    }

    [Fact]
    public void ScaledEvalAndTrainTransformsGiveThePictureOfTheFullDecode()
    {
        var path = Jpeg(640, 480);
        var eval = EvalTransform.ImageNet(112);                           // resize 128: decodes at 2/8 (160 × 120 is too small, 3/8 = 240×180)
        using var image = EncodedImage.Read(path);
        using var fromScaled = eval.Apply(image);
        using var fromFull = eval.Apply(ImageDecoder.Decode(path, 3));
        Assert.Equal(fromFull.shape, fromScaled.shape);
        double meanDiff = (fromScaled - fromFull).abs().mean().item<float>();
        Assert.True(meanDiff < 0.05, $"mean |difference| {meanDiff} (normalised units)");

        var train = new TrainTransform(AugmentOptions.ImageNet(64) with { RandAugment = null, Erasing = null });
        using var a = train.Apply(image, 42);
        using var b = train.Apply(ImageDecoder.Decode(path, 3), 42);      // same crop box, drawn on the full size
        Assert.Equal(b.shape, a.shape);
        double trainDiff = (a - b).abs().mean().item<float>();
        Assert.True(trainDiff < 0.1, $"mean |difference| {trainDiff}");

        // An image smaller than the crop's output has no smaller scale to use: the encoded path equals the pixel path exactly.
        var small = Jpeg(130, 120);
        var large = new TrainTransform(AugmentOptions.ImageNet(224) with { RandAugment = null, Erasing = null });
        using var smallImage = EncodedImage.Read(small);
        using var c = large.Apply(smallImage, 7);
        using var d = large.Apply(ImageDecoder.Decode(small, 3), 7);
        Assert.Equal(0f, (c - d).abs().max().item<float>());
    }
}
