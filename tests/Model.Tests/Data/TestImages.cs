using SkiaSharp;

namespace Jetpack.Model.Tests.Data;

/// <summary>Encodes small images with SkiaSharp at test time, so expected pixel values are known exactly.</summary>
public static class TestImages
{
    public delegate (byte R, byte G, byte B, byte A) PixelRule(int x, int y);

    /// <summary>An RGBA PNG (unpremultiplied, lossless) of <paramref name="width"/> × <paramref name="height"/>.</summary>
    public static byte[] Png(int width, int height, PixelRule pixel) =>
        Encode(width, height, pixel, SKEncodedImageFormat.Png, 100);

    /// <summary>A JPEG at quality 95 (lossy: compare with a tolerance).</summary>
    public static byte[] Jpeg(int width, int height, PixelRule pixel) =>
        Encode(width, height, pixel, SKEncodedImageFormat.Jpeg, 95);

    /// <summary>A single-channel (grayscale) PNG.</summary>
    public static byte[] GrayPng(int width, int height, Func<int, int, byte> value)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        var pixels = new byte[width * height];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                pixels[y * width + x] = value(x, y);
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        return EncodeBitmap(bitmap, SKEncodedImageFormat.Png, 100);
    }

    public static PixelRule Solid(byte r, byte g, byte b) => (_, _) => (r, g, b, 255);

    private static byte[] Encode(int width, int height, PixelRule pixel, SKEncodedImageFormat format, int quality)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var bytes = new byte[width * height * 4];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                var (r, g, b, a) = pixel(x, y);
                int i = 4 * (y * width + x);
                (bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]) = (r, g, b, a);
            }
        }
        System.Runtime.InteropServices.Marshal.Copy(bytes, 0, bitmap.GetPixels(), bytes.Length);
        return EncodeBitmap(bitmap, format, quality);
    }

    private static byte[] EncodeBitmap(SKBitmap bitmap, SKEncodedImageFormat format, int quality)
    {
        using var data = bitmap.Encode(format, quality)
            ?? throw new InvalidOperationException($"SkiaSharp could not encode {format}");
        return data.ToArray();
    }
}
