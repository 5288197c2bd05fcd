using Jetpack.Model.Data;
using Jetpack.Model.Data.Fixtures;
using Jetpack.Model.Tests.Checkpoints;
using SkiaSharp;

namespace Jetpack.Model.Tests.Data;

/// <summary>The generated ImageNet-like tree: sizes, layout, and the quirk files decode (or fail) as real ImageNet's do.</summary>
public sealed class ImageTreeGeneratorTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void TheTreeHasImageNetsLayoutSizesAndQuirks()
    {
        var tree = ImageTreeGenerator.Write(_dir.FullPath, classes: 3, trainPerClass: 4, valPerClass: 2);

        Assert.Equal(tree.Classes.Order(StringComparer.Ordinal), Directory.GetDirectories(Path.Combine(tree.Root, "train")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Contains(tree.Classes, c => c.Contains(' ') && c.Any(ch => ch > 127));
        var files = Directory.GetFiles(tree.Root, "*", SearchOption.AllDirectories);
        Assert.Equal(tree.TrainImages + tree.ValImages, files.Length);
        var regular = files.Where(f => !Path.GetFileName(f).StartsWith("quirk_", StringComparison.Ordinal)).ToList();
        foreach (var f in regular)
        {
            var image = ImageDecoder.Decode(f, 3);
            Assert.InRange(Math.Max(image.Width, image.Height), 160, 800);
            Assert.InRange(Math.Min(image.Width, image.Height), 80, 800);
            Assert.True(Contrast(image) > 10, $"{f}: flat image");              // content, not a blank
        }
        Assert.True(regular.Select(f => new FileInfo(f).Length).Distinct().Count() > regular.Count / 2);

        // CMYK (Adobe, inverted) decodes to RGB, the same picture as its source within JPEG's loss.
        var cmyk = ImageDecoder.Decode(tree.Cmyk, 3);
        Assert.Equal((240, 180), (cmyk.Width, cmyk.Height));
        using (var codec = SKCodec.Create(tree.Cmyk)) Assert.Equal(SKEncodedImageFormat.Jpeg, codec.EncodedFormat);
        Assert.True(Contrast(cmyk) > 10);

        var gray = ImageDecoder.Decode(tree.Grayscale, 3);
        for (int i = 0; i < gray.Width * gray.Height; i += 97)
            Assert.True(gray.Data[3 * i] == gray.Data[3 * i + 1] && gray.Data[3 * i + 1] == gray.Data[3 * i + 2]);
        using (var codec = SKCodec.Create(tree.PngNamedJpeg)) Assert.Equal(SKEncodedImageFormat.Png, codec.EncodedFormat);
        Assert.Equal(220, ImageDecoder.Decode(tree.PngNamedJpeg, 3).Width);

        foreach (var bad in tree.BadFiles)
            Assert.Contains(bad, Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(bad, 3)).Message);
    }

    [Fact]
    public void TheCmykFileDecodesToItsSourcePicture()
    {
        var random = new SplitMix64(3);
        using var bitmap = ImageTreeGenerator.Draw(96, 64, 2, ref random);
        var rgb = ImageTreeGenerator.Rgb(bitmap);
        var path = _dir.File("cmyk.jpg");
        File.WriteAllBytes(path, CmykJpegWriter.Encode(rgb, 96, 64, quantizer: 2));
        var decoded = ImageDecoder.Decode(path, 3);
        double meanError = rgb.Zip(decoded.Data, (a, b) => (double)Math.Abs(a - b)).Average();
        Assert.True(meanError < 4, $"mean absolute error {meanError:F2} levels");
    }

    private static double Contrast(ImagePixels image)
    {
        double mean = image.Data.Average(b => (double)b);
        return Math.Sqrt(image.Data.Average(b => (b - mean) * (b - mean)));
    }
}
