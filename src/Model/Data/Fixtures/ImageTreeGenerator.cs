using SkiaSharp;

namespace Jetpack.Model.Data.Fixtures;

/// <summary>What <see cref="ImageTreeGenerator.Write"/> made: the class names (sorted, as ImageFolder labels them) and the quirk files by role.</summary>
public sealed record ImageTree(string Root, IReadOnlyList<string> Classes, int TrainImages, int ValImages,
                               string Cmyk, string Grayscale, string PngNamedJpeg, string Truncated, string Empty)
{
    /// <summary>The files a decoder must skip (truncated, empty).</summary>
    public IReadOnlyList<string> BadFiles => [Truncated, Empty];
}

/// <summary>
/// Writes a small ImageNet-like tree — <c>train/&lt;class&gt;/*.JPEG</c> and <c>val/&lt;class&gt;/*.JPEG</c> —
/// for tests and benchmarks, deterministically from a seed (committed as code, not images).
/// Images are 120–800 px with aspect ratios 1:2 … 2:1 and JPEG quality 55–95; their content is a
/// sky-to-ground gradient, a fractal-noise texture and a few shapes in the class's palette (so
/// classes are learnable and JPEG sees photo-like statistics, not white noise).
/// <para>
/// The quirks of real ImageNet, all in train/ of the first classes: one Adobe CMYK JPEG, one
/// grayscale JPEG, one PNG named <c>.JPEG</c>, one truncated JPEG (first half), one empty file;
/// and the last class's folder name has a space and non-ASCII letters.
/// </para>
/// </summary>
public static class ImageTreeGenerator
{
    /// <summary>ImageNet-style synset folder names, then one with a space and unicode.</summary>
    public static IReadOnlyList<string> ClassNames(int classes) =>
        [.. Enumerable.Range(0, classes - 1).Select(i => $"n{1440764 + 7919 * i:D8}"), "n99 café ünïcode"];

    /// <param name="root">created if missing; train/ and val/ are written under it</param>
    /// <param name="classes">at least 2</param>
    /// <param name="trainPerClass">regular images per class in train/ (the quirk files come on top)</param>
    /// <param name="valPerClass">images per class in val/ (all decodable)</param>
    /// <param name="maxSide">the longest side's upper bound (800 for the ImageNet-like spread; smaller is faster)</param>
    public static ImageTree Write(string root, int classes = 4, int trainPerClass = 12, int valPerClass = 4, int seed = 7, int maxSide = 800)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(trainPerClass, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(valPerClass, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSide, 120);
        root = Path.GetFullPath(root);
        var names = ClassNames(classes);
        var random = new SplitMix64(SplitMix64.Mix((ulong)seed));
        foreach (var split in new[] { "train", "val" })
        {
            int perClass = split == "train" ? trainPerClass : valPerClass;
            for (int c = 0; c < classes; c++)
            {
                var dir = Directory.CreateDirectory(Path.Combine(root, split, names[c])).FullName;
                for (int i = 0; i < perClass; i++)
                {
                    var (w, h) = RandomSize(ref random, maxSide);
                    int quality = 55 + random.Below(41);
                    using var bitmap = Draw(w, h, c, ref random);
                    File.WriteAllBytes(Path.Combine(dir, $"{names[c].Split(' ')[0]}_{split}_{i:D4}.JPEG"), Encode(bitmap, SKEncodedImageFormat.Jpeg, quality));
                }
            }
        }

        string Quirk(int c, string name) => Path.Combine(root, "train", names[c % classes], name);
        var cmyk = Quirk(0, "quirk_cmyk.JPEG");
        var gray = Quirk(1, "quirk_grayscale.JPEG");
        var png = Quirk(0, "quirk_png_named.JPEG");
        var truncated = Quirk(1, "quirk_truncated.JPEG");
        var empty = Quirk(2, "quirk_empty.JPEG");
        using (var b = Draw(240, 180, 0, ref random)) File.WriteAllBytes(cmyk, CmykJpegWriter.Encode(Rgb(b), b.Width, b.Height));
        using (var b = Draw(200, 260, 1, ref random))
        using (var g = new SKBitmap(new SKImageInfo(b.Width, b.Height, SKColorType.Gray8, SKAlphaType.Opaque)))
        {
            var rgb = Rgb(b);
            var luma = new byte[b.Width * b.Height];
            for (int i = 0; i < luma.Length; i++) luma[i] = ImagePixels.Luma(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
            System.Runtime.InteropServices.Marshal.Copy(luma, 0, g.GetPixels(), luma.Length);
            File.WriteAllBytes(gray, Encode(g, SKEncodedImageFormat.Jpeg, 85));
        }
        using (var b = Draw(220, 160, 0, ref random)) File.WriteAllBytes(png, Encode(b, SKEncodedImageFormat.Png, 100));
        using (var b = Draw(320, 240, 1, ref random))
        {
            var full = Encode(b, SKEncodedImageFormat.Jpeg, 90);
            File.WriteAllBytes(truncated, full[..(full.Length / 2)]);
        }
        File.WriteAllBytes(empty, []);
        return new ImageTree(root, names, classes * trainPerClass + 5, classes * valPerClass, cmyk, gray, png, truncated, empty);
    }

    /// <summary>The RGB bytes of a bitmap (for encoders and comparisons).</summary>
    public static byte[] Rgb(SKBitmap bitmap)
    {
        using var rgba = bitmap.Copy(SKColorType.Rgba8888);
        var bytes = rgba.Bytes;
        var rgb = new byte[bitmap.Width * bitmap.Height * 3];
        for (int i = 0, n = bitmap.Width * bitmap.Height; i < n; i++)
            (rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]) = (bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2]);
        return rgb;
    }

    private static (int W, int H) RandomSize(ref SplitMix64 random, int maxSide)
    {
        int longSide = 160 + random.Below((uint)(maxSide - 160 + 1));
        double aspect = 1 + random.Below(1001) / 1000.0;                         // 1 … 2
        int shortSide = Math.Max(120, (int)(longSide / aspect));
        return random.Below(2) == 0 ? (longSide, shortSide) : (shortSide, longSide);
    }

    /// <summary>A gradient sky over ground, a noise texture, and shapes whose hue and kind depend on the class.</summary>
    public static SKBitmap Draw(int width, int height, int classIndex, ref SplitMix64 random)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(bitmap);
        float hue = (classIndex * 67) % 360;
        var sky = SKColor.FromHsv((hue + 180 + random.Below(40)) % 360, 25 + random.Below(30), 70 + random.Below(30));
        var ground = SKColor.FromHsv((hue + 30 + random.Below(60)) % 360, 40 + random.Below(40), 25 + random.Below(40));
        float horizon = height * (0.35f + random.Below(40) / 100f);
        using (var paint = new SKPaint())
        {
            paint.Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(0, height),
                [sky, sky.WithAlpha(255), ground], [0, horizon / height, 1], SKShaderTileMode.Clamp);
            canvas.DrawRect(0, 0, width, height, paint);
        }
        using (var paint = new SKPaint { BlendMode = SKBlendMode.Overlay })
        {
            float frequency = 0.005f + random.Below(40) / 1000f;
            paint.Shader = SKShader.CreatePerlinNoiseFractalNoise(frequency, frequency, 4, random.Below(1000));
            paint.Color = paint.Color.WithAlpha(140);
            canvas.DrawRect(0, 0, width, height, paint);
        }
        int shapes = 2 + random.Below(4);
        for (int s = 0; s < shapes; s++)
        {
            var color = SKColor.FromHsv((hue + random.Below(30)) % 360, 60 + random.Below(40), 40 + random.Below(60));
            float cx = random.Below((uint)width), cy = random.Below((uint)height);
            float r = Math.Min(width, height) * (0.08f + random.Below(25) / 100f);
            using var paint = new SKPaint { IsAntialias = true };
            paint.Shader = SKShader.CreateRadialGradient(new SKPoint(cx - r / 3, cy - r / 3), r * 1.4f,
                [color.WithAlpha(255), Darker(color)], SKShaderTileMode.Clamp);
            switch (classIndex % 3)
            {
                case 0: canvas.DrawCircle(cx, cy, r, paint); break;
                case 1: canvas.DrawRoundRect(cx - r, cy - r * 0.7f, 2 * r, 1.4f * r, r / 4, r / 4, paint); break;
                default:
                    using (var path = new SKPath())
                    {
                        path.MoveTo(cx, cy - r); path.LineTo(cx + r, cy + r); path.LineTo(cx - r, cy + r); path.Close();
                        canvas.DrawPath(path, paint);
                    }
                    break;
            }
        }
        canvas.Flush();
        return bitmap;
    }

    private static SKColor Darker(SKColor c) => new((byte)(c.Red / 3), (byte)(c.Green / 3), (byte)(c.Blue / 3));

    private static byte[] Encode(SKBitmap bitmap, SKEncodedImageFormat format, int quality)
    {
        using var data = bitmap.Encode(format, quality) ?? throw new InvalidOperationException($"SkiaSharp could not encode {format}");
        return data.ToArray();
    }
}
