using SkiaSharp;

namespace Jetpack.Model.Data;

/// <summary>
/// Decodes JPEG/PNG/BMP/WebP files with SkiaSharp into the 8-bit pixels PIL's
/// <c>Image.open(f).convert("RGB" or "L")</c> would give (torchvision's ImageFolder loader).
/// </summary>
public static class ImageDecoder
{
    /// <summary>Extensions decoded here, compared case-insensitively (torchvision also lists ppm/pgm/tif, which Skia cannot read).</summary>
    public static readonly IReadOnlyList<string> Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".webp"];

    public static bool HasImageExtension(string path) =>
        Extensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Decodes <paramref name="path"/> to <paramref name="channels"/> channels (3: RGB, 1: PIL's
    /// luma). Throws <see cref="InvalidDataException"/> naming the file when it is not an image
    /// Skia recognises or is truncated or corrupt; I/O errors (missing file, permissions) pass through.
    /// <para>
    /// Pixels are requested as Rgba8888 with <b>unpremultiplied</b> alpha and no colour space:
    /// PIL's convert("RGB") drops alpha without premultiplying (a transparent pixel keeps its
    /// colour) and ignores ICC profiles, and so does this. SKCodec rather than SKBitmap.Decode
    /// because Decode accepts a truncated file (IncompleteInput) and fills the missing rows,
    /// where PIL raises "image file is truncated".
    /// </para>
    /// </summary>
    public static ImagePixels Decode(string path, int channels)
    {
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), $"channels must be 1 or 3, got {channels}");
        var bytes = File.ReadAllBytes(path);
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data)
            ?? throw Corrupt(path, "not an image SkiaSharp can decode (unknown format or unreadable header)");
        var (width, height) = (codec.Info.Width, codec.Info.Height);
        if (width < 1 || height < 1)
            throw Corrupt(path, $"image size {width}x{height}");
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[info.BytesSize];
        SKCodecResult result;
        unsafe
        {
            fixed (byte* pixels = rgba)
                result = codec.GetPixels(info, (IntPtr)pixels);
        }
        if (result != SKCodecResult.Success)
            throw Corrupt(path, result == SKCodecResult.IncompleteInput ? "truncated (incomplete image data)" : $"decoding failed ({result})");

        int n = width * height;
        var output = new byte[n * channels];
        if (channels == 3)
        {
            for (int i = 0; i < n; i++)
            {
                output[3 * i] = rgba[4 * i];
                output[3 * i + 1] = rgba[4 * i + 1];
                output[3 * i + 2] = rgba[4 * i + 2];
            }
        }
        else
        {
            for (int i = 0; i < n; i++)
                output[i] = ImagePixels.Luma(rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]);
        }
        return new ImagePixels(output, width, height, channels);
    }

    private static InvalidDataException Corrupt(string path, string why) => new($"{path}: {why}");
}
