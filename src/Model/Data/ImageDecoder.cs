using System.Buffers;
using Microsoft.Win32.SafeHandles;
using SkiaSharp;

namespace Jetpack.Model.Data;

/// <summary>
/// Decodes JPEG/PNG/BMP/WebP files with SkiaSharp into the 8-bit pixels PIL's
/// <c>Image.open(f).convert("RGB" or "L")</c> would give (torchvision's ImageFolder loader).
/// The format is recognised by its magic bytes, not the file name (ImageNet holds PNGs named .JPEG);
/// CMYK JPEGs (Adobe, inverted) and grayscale ones come out as RGB.
/// </summary>
public static class ImageDecoder
{
    /// <summary>Extensions decoded here, compared case-insensitively (torchvision also lists ppm/pgm/tif, which Skia cannot read).</summary>
    public static readonly IReadOnlyList<string> Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".webp"];

    public static bool HasImageExtension(string path) =>
        Extensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Decodes <paramref name="path"/> to <paramref name="channels"/> channels (3: RGB, 1: PIL's
    /// luma), at full size. Throws <see cref="InvalidDataException"/> naming the file (<see cref="UndecodableImage"/>) when it is
    /// empty, not an image Skia recognises, truncated or corrupt; I/O errors (missing file, permissions) pass through.
    /// </summary>
    public static ImagePixels Decode(string path, int channels)
    {
        using var image = EncodedImage.Read(path);
        return image.Decode(channels);
    }
}

/// <summary>
/// Decode failures of one file (empty, unknown format, truncated, corrupt): an <see cref="InvalidDataException"/>
/// whose message starts with the path, which <see cref="PathOf"/> also returns (it is in <c>Data</c>).
/// </summary>
public static class UndecodableImage
{
    private const string Key = "jetpack.undecodable_image";

    public static InvalidDataException Error(string path, string why)
    {
        var e = new InvalidDataException($"{path}: {why}");
        e.Data[Key] = path;
        return e;
    }

    /// <summary>The file of a decode failure, or null for any other exception.</summary>
    public static string? PathOf(Exception e) => e.Data[Key] as string;
}

/// <summary>
/// An encoded image whose header has been read (size known, nothing decoded yet), so a transform can
/// choose how large a decode it needs. <see cref="DecodeAtLeast"/> uses libjpeg-turbo's DCT-domain
/// downscaling (SkCodec scaled decode, scales k/8): a 500×375 JPEG wanted at ≥ 256 on its short side is
/// decoded at 6/8 → 375×282 for a fraction of the work. Not thread-safe; one per decode.
/// <para>
/// Buffers: <see cref="Read(SafeFileHandle, long, int, string)"/> reads the encoded bytes straight into
/// the codec's native memory (no managed copy per image), and the decode's RGBA scratch (4 bytes a
/// pixel, on the large-object heap at ImageNet sizes) is rented from the shared array pool: per image the
/// managed heap sees only the output pixels (tested: GC bytes per image below that bound plus 8 KB).
/// </para>
/// </summary>
public sealed class EncodedImage : IDisposable
{
    /// <summary>The largest encoded image read (a bigger one is corrupt or hostile); checked before anything is allocated.</summary>
    public const long MaxBytes = 64L << 20;

    private readonly SKData _data;
    private readonly SKCodec _codec;

    /// <param name="name">the file (or tar member) the bytes came from, for errors</param>
    public EncodedImage(byte[] bytes, string name)
        : this(bytes is { Length: > 0 } ? SKData.CreateCopy(bytes) : throw (bytes is null ? new ArgumentNullException(nameof(bytes)) : UndecodableImage.Error(name, "empty file")), name)
    {
    }

    /// <summary>Takes ownership of <paramref name="data"/> (disposed here, also when the header is unreadable).</summary>
    private EncodedImage(SKData data, string name)
    {
        Name = name;
        _data = data;
        var codec = SKCodec.Create(_data);
        if (codec is null)
        {
            _data.Dispose();
            throw UndecodableImage.Error(name, "not an image SkiaSharp can decode (unknown format or unreadable header)");
        }
        _codec = codec;
        (Width, Height) = (codec.Info.Width, codec.Info.Height);
        if (Width < 1 || Height < 1)
        {
            Dispose();
            throw UndecodableImage.Error(name, $"image size {Width}x{Height}");
        }
    }

    public static EncodedImage Read(string path)
    {
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        long length = RandomAccess.GetLength(file);
        if (length > MaxBytes) throw UndecodableImage.Error(path, $"{length:N0} bytes, above the {MaxBytes:N0}-byte limit for one image");
        return Read(file, 0, (int)length, path);
    }

    /// <summary>
    /// <paramref name="length"/> bytes at <paramref name="offset"/> of an open file (a whole image file, or a tar
    /// member), read into native memory the codec then decodes from: no managed copy.
    /// </summary>
    public static EncodedImage Read(SafeFileHandle file, long offset, int length, string name)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (length == 0) throw UndecodableImage.Error(name, "empty file");
        if (length < 0 || length > MaxBytes) throw UndecodableImage.Error(name, $"{length:N0} bytes, outside 1..{MaxBytes:N0} for one image");
        var data = SKData.Create((long)length);                                   // native and uninitialised: filled below
        try
        {
            int read = 0;
            while (read < length)
            {
                int n;
                unsafe { n = RandomAccess.Read(file, new Span<byte>((byte*)data.Data + read, length - read), offset + read); }
                if (n == 0) throw UndecodableImage.Error(name, $"the file ends inside the image ({read} of {length} bytes)");
                read += n;
            }
        }
        catch
        {
            data.Dispose();
            throw;
        }
        return new EncodedImage(data, name);
    }

    public string Name { get; }
    public int Width { get; }
    public int Height { get; }
    public SKEncodedImageFormat Format => _codec.EncodedFormat;

    /// <summary>The full image.</summary>
    public ImagePixels Decode(int channels) => DecodeAt(Width, Height, channels);

    /// <summary>
    /// The image at the smallest scale the codec supports (k/8 for JPEG, 1 otherwise) whose size is
    /// at least <paramref name="minWidth"/> × <paramref name="minHeight"/>; full size if none is smaller.
    /// The result's size is the decoded one: callers map their coordinates by Width/image.Width.
    /// </summary>
    public ImagePixels DecodeAtLeast(int minWidth, int minHeight, int channels)
    {
        var (width, height) = ScaledSize(minWidth, minHeight);
        return DecodeAt(width, height, channels);
    }

    /// <summary>The smallest codec scale (k/8 for JPEG) giving at least <paramref name="minWidth"/> × <paramref name="minHeight"/>; the full size if none is smaller.</summary>
    internal (int Width, int Height) ScaledSize(int minWidth, int minHeight)
    {
        if (Format == SKEncodedImageFormat.Jpeg)
        {
            for (int k = 1; k < 8; k++)
            {
                var size = _codec.GetScaledDimensions(k / 8f);
                if (size.Width >= minWidth && size.Height >= minHeight && size.Width < Width)
                    return (size.Width, size.Height);
            }
        }
        return (Width, Height);
    }

    /// <summary>
    /// Pixels are requested as Rgba8888 with <b>unpremultiplied</b> alpha and no colour space:
    /// PIL's convert("RGB") drops alpha without premultiplying (a transparent pixel keeps its
    /// colour) and ignores ICC profiles, and so does this. SKCodec rather than SKBitmap.Decode
    /// because Decode accepts a truncated file (IncompleteInput) and fills the missing rows,
    /// where PIL raises "image file is truncated".
    /// </summary>
    private ImagePixels DecodeAt(int width, int height, int channels)
    {
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), $"channels must be 1 or 3, got {channels}");
        using var rgba = DecodeRgba(width, height);
        return ToChannels(rgba.Buffer, width, height, channels);
    }

    /// <summary>
    /// The pixels of <paramref name="region"/> of the image decoded at <paramref name="width"/> × <paramref name="height"/> (a
    /// size <see cref="ScaledSize"/> gave), or more of them: the result's Left, Top, Width and Height say which. Today the
    /// whole image (see inside).
    /// </summary>
    internal RgbaPixels DecodeRgbaRegion(int width, int height, BicubicResize.Box region)
    {
        if (region.Left < 0 || region.Top < 0 || region.Width < 1 || region.Height < 1 || region.Left + region.Width > width || region.Top + region.Height > height)
            throw new ArgumentOutOfRangeException(nameof(region), $"region {region} is outside the {width}x{height} decode");
        // The whole image, for now. A column-subset scanline decode (SkCodec StartScanlineDecode with a subset) was tried
        // and taken out: with it, Application.Tests' host died 2 times in 4 loaded runs with a corrupted managed heap
        // (NullReferenceException in TimerQueue.FireNextTimers, during ImageFolderRunTests), and 7 of 7 passed without it.
        // The likeliest cause is the codec writing rows wider than the rented buffer (libjpeg widens a crop to iMCU
        // boundaries). Callers keep the region API: RgbaPixels' Left and Top are 0 here.
        return DecodeRgba(width, height);
    }

    private RgbaPixels DecodeRgba(int width, int height)
    {
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = ArrayPool<byte>.Shared.Rent(info.BytesSize);          // scratch: returned by RgbaPixels (its length may exceed BytesSize)
        try
        {
            SKCodecResult result;
            unsafe
            {
                fixed (byte* pixels = rgba)
                    result = _codec.GetPixels(info, (IntPtr)pixels);
            }
            if (result != SKCodecResult.Success)
                throw UndecodableImage.Error(Name, result == SKCodecResult.IncompleteInput ? "truncated (incomplete image data)" : $"decoding failed ({result})");
            return new RgbaPixels(rgba, width, height);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(rgba);
            throw;
        }
    }

    private static ImagePixels ToChannels(byte[] rgba, int width, int height, int channels)
    {
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

    public void Dispose()
    {
        _codec?.Dispose();
        _data.Dispose();
    }
}

/// <summary>
/// Decoded RGBA pixels (rows top to bottom, 4 bytes a pixel, alpha unpremultiplied and to be ignored), the whole image
/// or the part of it at (Left, Top), in a buffer
/// rented from the shared array pool, which <see cref="Dispose"/> returns: use it only before then.
/// </summary>
internal readonly struct RgbaPixels(byte[] buffer, int width, int height, int left = 0, int top = 0) : IDisposable
{
    public byte[] Buffer { get; } = buffer;
    public int Width { get; } = width;
    public int Height { get; } = height;
    /// <summary>Where these pixels sit in the decoded image (a region decode holds part of it).</summary>
    public int Left { get; } = left;
    public int Top { get; } = top;
    public ReadOnlySpan<byte> Data => Buffer.AsSpan(0, Width * Height * 4);
    public void Dispose() => ArrayPool<byte>.Shared.Return(Buffer);
}
