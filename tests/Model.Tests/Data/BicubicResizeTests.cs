using Jetpack.Model.Checkpoints;
using Jetpack.Model.Data;
using Xunit.Abstractions;

namespace Jetpack.Model.Tests.Data;

/// <summary>
/// PIL's bicubic resize in C#: crop + resize against Pillow 9.4 on the same pixels (Fixtures/make_eval_fixture.py),
/// and the properties the pipeline relies on (an RGBA source and an RGB one agree, a window is a crop of the whole).
/// </summary>
[Trait("Kernel", "Cpu")]  // also run without AVX-512 (scripts/test.sh)
public sealed class BicubicResizeTests(ITestOutputHelper output)
{
    private static readonly string FixtureDir = Path.Combine(AppContext.BaseDirectory, "Data", "Fixtures");

    [Theory]
    [InlineData(5, 7, 60, 50, 24, 24)]       // shrink by 2.5 and 2.1
    [InlineData(30, 20, 9, 12, 40, 40)]      // enlarge
    [InlineData(0, 0, 90, 67, 33, 100)]      // shrink one axis, enlarge the other
    [InlineData(44, 33, 1, 1, 5, 3)]         // a 1-pixel box
    [InlineData(10, 10, 40, 30, 40, 30)]     // no resize: the crop itself
    [InlineData(3, 2, 80, 60, 80, 17)]       // the vertical pass only
    public void CropThenResizeEqualsPillow(int left, int top, int width, int height, int outWidth, int outHeight)
    {
        var image = ImageDecoder.Decode(Path.Combine(FixtureDir, "texture.png"), 3);
        using var reader = SafetensorsReader.Open(Path.Combine(FixtureDir, "eval_transform_expected.safetensors"));
        using var expected = reader.ReadTensor($"crop_{left}_{top}_{width}_{height}_to_{outWidth}_{outHeight}");   // [h, w, 3] uint8
        var pil = expected.bytes.ToArray();
        var box = new BicubicResize.Box(left, top, width, height);
        var rgb = BicubicResize.Resize(image, outWidth, outHeight, box);
        var rgba = new byte[outWidth * outHeight * 3];
        BicubicResize.Resize(Rgba(image), image.Width, 4, 3, box, outWidth, outHeight, BicubicResize.Box.Whole(outWidth, outHeight), rgba);
        int max = pil.Zip(rgb.Data, (a, b) => Math.Abs(a - b)).Max();
        output.WriteLine($"{width}x{height} → {outWidth}x{outHeight}: max |diff| to Pillow {max} levels");
        Assert.Equal(pil, rgb.Data);                                   // PIL's fixed point, to the bit
        Assert.Equal(rgb.Data, rgba);                                  // the SIMD path over RGBA equals the scalar one over RGB
    }

    [Fact]
    public void AWindowIsTheSameRegionOfTheWholeResize()
    {
        var image = Augment.AugmentTestImages.Make(97, 61, 3, (x, y, c) => (x * x + 3 * y + 40 * c) % 256);
        var whole = BicubicResize.Resize(image, 70, 45);
        var window = new BicubicResize.Box(11, 6, 33, 20);
        var part = new byte[window.Width * window.Height * 3];
        BicubicResize.Resize(image.Data, image.Width, 3, 3, BicubicResize.Box.Whole(image.Width, image.Height), 70, 45, window, part);
        for (int y = 0; y < window.Height; y++)
            Assert.Equal(whole.Data.AsSpan(((window.Top + y) * 70 + window.Left) * 3, window.Width * 3).ToArray(),
                         part.AsSpan(y * window.Width * 3, window.Width * 3).ToArray());
    }

    [Fact]
    public void GrayResizesAndBadArgumentsAreRefused()
    {
        var gray = Augment.AugmentTestImages.Make(20, 10, 1, (x, y, _) => 100);
        Assert.All(BicubicResize.Resize(gray, 7, 31).Data, v => Assert.Equal(100, v));   // a flat image stays flat
        var rgb = Augment.AugmentTestImages.Gradient();
        Assert.Throws<ArgumentOutOfRangeException>(() => BicubicResize.Resize(rgb, 8, 8, new BicubicResize.Box(30, 0, 5, 5)));
        Assert.Throws<ArgumentException>(() => BicubicResize.Resize(rgb.Data, rgb.Width, 3, 1, BicubicResize.Box.Whole(rgb.Width, rgb.Height), 8, 8, BicubicResize.Box.Whole(8, 8), new byte[64]));
    }

    private static byte[] Rgba(ImagePixels image)
    {
        var rgba = new byte[image.Width * image.Height * 4];
        for (int i = 0; i < image.Width * image.Height; i++)
        {
            image.Data.AsSpan(3 * i, 3).CopyTo(rgba.AsSpan(4 * i));
            rgba[4 * i + 3] = (byte)(i * 37);                          // alpha is ignored
        }
        return rgba;
    }
}
