namespace Jetpack.Model.Data.Augment;

/// <summary>
/// RandAugment's colour ops (spec §7.2) on 8-bit HWC pixels, following PIL's ImageOps and
/// ImageEnhance as timm applies them — RandAugment in timm runs on PIL images, so working on
/// bytes keeps its rounding (lookup tables, truncating blends) instead of approximating it in
/// float. Each op returns a new image and never modifies its input. Pure, thread-safe.
/// </summary>
public static class PixelOps
{
    /// <summary>255 − x (PIL ImageOps.invert).</summary>
    public static ImagePixels Invert(ImagePixels image) => MapLut(image, Lut(i => 255 - i));

    /// <summary>Keep the top <paramref name="bits"/> bits: x &amp; ~(2^(8−bits) − 1); bits ≥ 8 is the identity, 0 gives black (PIL ImageOps.posterize).</summary>
    public static ImagePixels Posterize(ImagePixels image, int bits)
    {
        if (bits >= 8) return Copy(image);
        int mask = ~((1 << (8 - Math.Max(bits, 0))) - 1);
        return MapLut(image, Lut(i => i & mask));
    }

    /// <summary>Invert every value ≥ <paramref name="threshold"/> (PIL ImageOps.solarize); threshold 256 is the identity.</summary>
    public static ImagePixels Solarize(ImagePixels image, int threshold) =>
        MapLut(image, Lut(i => i < threshold ? i : 255 - i));

    /// <summary>Add <paramref name="add"/> to values below <paramref name="threshold"/>, clipped at 255 (timm solarize_add).</summary>
    public static ImagePixels SolarizeAdd(ImagePixels image, int add, int threshold = 128) =>
        MapLut(image, Lut(i => i < threshold ? Math.Min(255, i + add) : i));

    /// <summary>
    /// Stretch each channel so its min becomes 0 and max 255: lut[i] = int(i · 255/(hi − lo) − lo · 255/(hi − lo))
    /// clipped, a flat channel unchanged (PIL ImageOps.autocontrast, cutoff 0).
    /// </summary>
    public static ImagePixels AutoContrast(ImagePixels image)
    {
        var luts = new int[image.Channels][];
        var histograms = Histograms(image);
        for (int c = 0; c < image.Channels; c++)
        {
            var h = histograms[c];
            int lo = Array.FindIndex(h, n => n > 0), hi = Array.FindLastIndex(h, n => n > 0);
            if (hi <= lo) { luts[c] = Lut(i => i); continue; }
            double scale = 255.0 / (hi - lo), offset = -lo * scale;
            luts[c] = Lut(i => Math.Clamp((int)(i * scale + offset), 0, 255));
        }
        return MapLuts(image, luts);
    }

    /// <summary>
    /// Histogram equalisation per channel, PIL's ImageOps.equalize: step = (N − count of the last
    /// occupied level) div 255; lut[i] = (step div 2 + #pixels below i) div step; identity when a channel
    /// has one level or step is 0.
    /// </summary>
    public static ImagePixels Equalize(ImagePixels image)
    {
        var luts = new int[image.Channels][];
        var histograms = Histograms(image);
        for (int c = 0; c < image.Channels; c++)
        {
            var h = histograms[c];
            int occupied = h.Count(n => n > 0);
            int last = h[Array.FindLastIndex(h, n => n > 0)];
            int step = (h.Sum() - last) / 255;
            if (occupied <= 1 || step == 0) { luts[c] = Lut(i => i); continue; }
            var lut = new int[256];
            int n = step / 2;
            for (int i = 0; i < 256; i++)
            {
                lut[i] = Math.Min(255, n / step);
                n += h[i];
            }
            luts[c] = lut;
        }
        return MapLuts(image, luts);
    }

    /// <summary>ImageEnhance.Color: blend with the image's gray (PIL luma) version; a gray image is unchanged.</summary>
    public static ImagePixels Color(ImagePixels image, double factor) =>
        image.Channels == 1 ? Copy(image) : Blend(image.WithChannels(1).WithChannels(3), image, factor);

    /// <summary>ImageEnhance.Contrast: blend with a flat image at the rounded mean luma.</summary>
    public static ImagePixels Contrast(ImagePixels image, double factor)
    {
        var gray = image.WithChannels(1).Data;
        long sum = 0;
        foreach (var v in gray) sum += v;
        byte mean = (byte)(int)(sum / (double)gray.Length + 0.5);
        var flat = new byte[image.Data.Length];
        Array.Fill(flat, mean);
        return Blend(new ImagePixels(flat, image.Width, image.Height, image.Channels), image, factor);
    }

    /// <summary>ImageEnhance.Brightness: blend with black.</summary>
    public static ImagePixels Brightness(ImagePixels image, double factor) =>
        Blend(new ImagePixels(new byte[image.Data.Length], image.Width, image.Height, image.Channels), image, factor);

    /// <summary>
    /// ImageEnhance.Sharpness: blend with PIL's SMOOTH filter ([1 1 1; 1 5 1; 1 1 1] / 13, rounded),
    /// whose border rows and columns are the original pixels.
    /// </summary>
    public static ImagePixels Sharpness(ImagePixels image, double factor)
    {
        int w = image.Width, h = image.Height, ch = image.Channels;
        var src = image.Data;
        var smooth = (byte[])src.Clone();
        for (int y = 1; y < h - 1; y++)
            for (int x = 1; x < w - 1; x++)
                for (int c = 0; c < ch; c++)
                {
                    int sum = 0;
                    for (int dy = -1; dy <= 1; dy++)
                        for (int dx = -1; dx <= 1; dx++)
                            sum += src[((y + dy) * w + x + dx) * ch + c];
                    sum += 4 * src[(y * w + x) * ch + c];                      // centre weight 5
                    smooth[(y * w + x) * ch + c] = (byte)Math.Clamp((int)(sum / 13.0 + 0.5), 0, 255);
                }
        return Blend(new ImagePixels(smooth, w, h, ch), image, factor);
    }

    /// <summary>PIL Image.blend: degenerate + factor · (image − degenerate), truncated and clipped to 0..255.</summary>
    internal static ImagePixels Blend(ImagePixels degenerate, ImagePixels image, double factor)
    {
        var a = degenerate.Data;
        var b = image.Data;
        var output = new byte[b.Length];
        for (int i = 0; i < b.Length; i++)
        {
            double v = a[i] + factor * (b[i] - a[i]);
            output[i] = v <= 0 ? (byte)0 : v >= 255 ? (byte)255 : (byte)(int)v;
        }
        return new ImagePixels(output, image.Width, image.Height, image.Channels);
    }

    /// <summary>Mirror left ↔ right.</summary>
    public static ImagePixels FlipHorizontal(ImagePixels image)
    {
        int w = image.Width, ch = image.Channels;
        var src = image.Data;
        var output = new byte[src.Length];
        for (int y = 0; y < image.Height; y++)
        {
            int row = y * w * ch;
            for (int x = 0; x < w; x++)
            {
                int from = row + x * ch, to = row + (w - 1 - x) * ch;
                for (int c = 0; c < ch; c++) output[to + c] = src[from + c];
            }
        }
        return new ImagePixels(output, w, image.Height, ch);
    }

    internal static ImagePixels Copy(ImagePixels image) =>
        new((byte[])image.Data.Clone(), image.Width, image.Height, image.Channels);

    private static int[] Lut(Func<int, int> f)
    {
        var lut = new int[256];
        for (int i = 0; i < 256; i++) lut[i] = f(i);
        return lut;
    }

    private static ImagePixels MapLut(ImagePixels image, int[] lut) =>
        MapLuts(image, Enumerable.Repeat(lut, image.Channels).ToArray());

    private static ImagePixels MapLuts(ImagePixels image, int[][] luts)
    {
        var src = image.Data;
        var output = new byte[src.Length];
        int ch = image.Channels;
        for (int i = 0; i < src.Length; i++)
            output[i] = (byte)luts[i % ch][src[i]];
        return new ImagePixels(output, image.Width, image.Height, ch);
    }

    private static int[][] Histograms(ImagePixels image)
    {
        int ch = image.Channels;
        var histograms = new int[ch][];
        for (int c = 0; c < ch; c++) histograms[c] = new int[256];
        var src = image.Data;
        for (int i = 0; i < src.Length; i++) histograms[i % ch][src[i]]++;
        return histograms;
    }
}
