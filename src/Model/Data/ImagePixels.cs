namespace Jetpack.Model.Data;

/// <summary>
/// A decoded 8-bit image, rows top to bottom, channels interleaved (HWC): what PIL hands to
/// torchvision's transforms. <see cref="Channels"/> is 1 (PIL mode "L") or 3 ("RGB").
/// </summary>
public sealed class ImagePixels
{
    public ImagePixels(byte[] data, int width, int height, int channels)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (width < 1 || height < 1)
            throw new ArgumentOutOfRangeException(nameof(width), $"image size must be positive, got {width}x{height}");
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), $"channels must be 1 or 3, got {channels}");
        if (data.Length != (long)width * height * channels)
            throw new ArgumentException(
                $"{width}x{height}x{channels} needs {(long)width * height * channels} bytes, got {data.Length}", nameof(data));
        Data = data;
        Width = width;
        Height = height;
        Channels = channels;
    }

    public byte[] Data { get; }
    public int Width { get; }
    public int Height { get; }
    public int Channels { get; }

    /// <summary>
    /// PIL's <c>convert("RGB")</c> of a grayscale image (the value in all three channels) or its
    /// <c>convert("L")</c> of an RGB one: ITU-R 601-2 luma in PIL's fixed point,
    /// L = (19595 R + 38470 G + 7471 B + 2^15) >> 16, so a gray pixel stays exactly itself.
    /// </summary>
    public ImagePixels WithChannels(int channels)
    {
        if (channels == Channels) return this;
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), $"channels must be 1 or 3, got {channels}");
        int n = Width * Height;
        var output = new byte[n * channels];
        if (channels == 3)
        {
            for (int i = 0; i < n; i++)
                output[3 * i] = output[3 * i + 1] = output[3 * i + 2] = Data[i];
        }
        else
        {
            for (int i = 0; i < n; i++)
                output[i] = Luma(Data[3 * i], Data[3 * i + 1], Data[3 * i + 2]);
        }
        return new ImagePixels(output, Width, Height, channels);
    }

    internal static byte Luma(byte r, byte g, byte b) => (byte)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}
