using Jetpack.Model.Data;
using Jetpack.Model.Data.Fixtures;
using Jetpack.Model.Tests.Checkpoints;
using SkiaSharp;

namespace Jetpack.Model.Tests.Data;

/// <summary>
/// The contract of EncodedImage.DecodeRgbaRegion: the result covers the region with the full decode's pixels, also
/// scaled, CMYK and grayscale, and a truncated file fails wherever the region lies. Today it decodes the whole image
/// (the column-subset decode was taken out, docs/data.md), so these hold by construction until a subset decode returns.
/// </summary>
public sealed class RegionDecodeTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ARegionHoldsTheFullDecodesPixels()
    {
        var random = new SplitMix64(5);
        using var bitmap = ImageTreeGenerator.Draw(437, 311, 2, ref random);
        using var encoded = bitmap.Encode(SKEncodedImageFormat.Jpeg, 85);                  // 4:2:0 chroma
        var files = new[]
        {
            Write("photo.jpg", encoded.ToArray()),
            Write("cmyk.jpg", CmykJpegWriter.Encode(ImageTreeGenerator.Rgb(bitmap), 437, 311)),
            Write("gray.jpg", Gray(bitmap)),
        };
        var rng = new Random(9);
        foreach (var file in files)
        {
            using var image = EncodedImage.Read(file);
            foreach (var (minWidth, minHeight) in new[] { (437, 311), (200, 120), (60, 40) })
            {
                var (width, height) = image.ScaledSize(minWidth, minHeight);
                using var full = image.DecodeRgbaRegion(width, height, BicubicResize.Box.Whole(width, height));
                Assert.Equal((0, 0, width, height), (full.Left, full.Top, full.Width, full.Height));
                for (int trial = 0; trial < 12; trial++)
                {
                    int w = rng.Next(1, width / 2), h = rng.Next(1, height / 2), x = rng.Next(0, width - w + 1), y = rng.Next(0, height - h + 1);
                    using var part = image.DecodeRgbaRegion(width, height, new BicubicResize.Box(x, y, w, h));
                    Assert.True(part.Left <= x && part.Top <= y && part.Left + part.Width >= x + w && part.Top + part.Height >= y + h);
                    for (int row = y; row < y + h; row++)
                        Assert.True(full.Data.Slice((row * width + x) * 4, w * 4).SequenceEqual(
                                    part.Data.Slice(((row - part.Top) * part.Width + x - part.Left) * 4, w * 4)),
                            $"{Path.GetFileName(file)} at {width}x{height}: row {row} of region ({x}, {y}, {w}, {h}) differs");
                }
            }
        }
    }

    [Fact]
    public void ATruncatedJpegFailsEvenWhenTheRegionIsIntact()
    {
        var random = new SplitMix64(6);
        using var bitmap = ImageTreeGenerator.Draw(300, 400, 1, ref random);
        using var encoded = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
        var bytes = encoded.ToArray();
        var path = Write("cut.jpg", bytes[..(bytes.Length * 2 / 3)]);
        using var image = EncodedImage.Read(path);
        var e = Assert.Throws<InvalidDataException>(() => image.DecodeRgbaRegion(300, 400, new BicubicResize.Box(10, 5, 50, 40)).Dispose());
        Assert.Equal(path, UndecodableImage.PathOf(e));
    }

    private string Write(string name, byte[] bytes)
    {
        var path = _dir.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Gray(SKBitmap bitmap)
    {
        using var gray = new SKBitmap(new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Gray8, SKAlphaType.Opaque));
        using (var canvas = new SKCanvas(gray)) canvas.DrawBitmap(bitmap, 0, 0);
        using var data = gray.Encode(SKEncodedImageFormat.Jpeg, 90);
        return data.ToArray();
    }
}
