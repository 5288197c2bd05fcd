using Jetpack.Model.Data;

namespace Jetpack.Model.Tests.Data.Augment;

/// <summary>Small in-memory images whose pixel values are known exactly.</summary>
internal static class AugmentTestImages
{
    public static ImagePixels Make(int width, int height, int channels, Func<int, int, int, int> value)
    {
        var data = new byte[width * height * channels];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < channels; c++)
                    data[(y * width + x) * channels + c] = (byte)value(x, y, c);
        return new ImagePixels(data, width, height, channels);
    }

    /// <summary>Every value 0..255 occurs, channels differ.</summary>
    public static ImagePixels Gradient(int width = 32, int height = 24) =>
        Make(width, height, 3, (x, y, c) => (x * 7 + y * 13 + c * 50) % 256);

    public static byte At(ImagePixels image, int x, int y, int c) => image.Data[(y * image.Width + x) * image.Channels + c];
}
