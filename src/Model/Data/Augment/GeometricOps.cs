namespace Jetpack.Model.Data.Augment;

/// <summary>
/// RandAugment's geometric ops (spec §7.2) on 8-bit HWC pixels, with PIL's Image.transform(AFFINE)
/// semantics as timm uses them: the output pixel centre (x + ½, y + ½) maps through
/// (a, b, c, d, e, f) to the input point (a·x′ + b·y′ + c, d·x′ + e·y′ + f); points outside the
/// image take the fill colour. Sampling is bilinear (timm draws bilinear or bicubic; bilinear is
/// the cheaper of the two — a documented deviation). Pure, thread-safe.
/// </summary>
public static class GeometricOps
{
    /// <summary>Counter-clockwise rotation by <paramref name="degrees"/> about the image centre (PIL Image.rotate).</summary>
    public static ImagePixels Rotate(ImagePixels image, double degrees, IReadOnlyList<byte> fill)
    {
        // PIL: angle = −radians(degrees), matrix (cos, sin, 0, −sin, cos, 0) about the centre.
        double angle = -degrees * Math.PI / 180.0;
        double cos = Snap(Math.Cos(angle)), sin = Snap(Math.Sin(angle));
        double cx = image.Width / 2.0, cy = image.Height / 2.0;
        double c = cx - (cos * cx + sin * cy);
        double f = cy - (-sin * cx + cos * cy);
        return Affine(image, cos, sin, c, -sin, cos, f, fill);
    }

    /// <summary>x_in = x + factor · y (timm shear_x).</summary>
    public static ImagePixels ShearX(ImagePixels image, double factor, IReadOnlyList<byte> fill) =>
        Affine(image, 1, factor, 0, 0, 1, 0, fill);

    /// <summary>y_in = factor · x + y (timm shear_y).</summary>
    public static ImagePixels ShearY(ImagePixels image, double factor, IReadOnlyList<byte> fill) =>
        Affine(image, 1, 0, 0, factor, 1, 0, fill);

    /// <summary>x_in = x + pixels: content moves left by <paramref name="pixels"/> (timm translate_x_abs).</summary>
    public static ImagePixels TranslateX(ImagePixels image, double pixels, IReadOnlyList<byte> fill) =>
        Affine(image, 1, 0, pixels, 0, 1, 0, fill);

    /// <summary>y_in = y + pixels: content moves up by <paramref name="pixels"/> (timm translate_y_abs).</summary>
    public static ImagePixels TranslateY(ImagePixels image, double pixels, IReadOnlyList<byte> fill) =>
        Affine(image, 1, 0, 0, 0, 1, pixels, fill);

    /// <summary>PIL's AFFINE transform with bilinear sampling; neighbours beyond the edge are clamped, points outside take <paramref name="fill"/>.</summary>
    public static ImagePixels Affine(ImagePixels image, double a, double b, double c, double d, double e, double f, IReadOnlyList<byte> fill)
    {
        int w = image.Width, h = image.Height, ch = image.Channels;
        if (fill.Count == 0) throw new ArgumentException("fill needs at least one value", nameof(fill));
        var src = image.Data;
        var output = new byte[src.Length];
        for (int y = 0; y < h; y++)
        {
            for (int x = 0; x < w; x++)
            {
                double xo = x + 0.5, yo = y + 0.5;
                double u = a * xo + b * yo + c, v = d * xo + e * yo + f;   // input point
                int o = (y * w + x) * ch;
                if (u < 0 || u >= w || v < 0 || v >= h)
                {
                    for (int k = 0; k < ch; k++) output[o + k] = fill[fill.Count == ch ? k : 0];   // a gray image takes the first value
                    continue;
                }
                // Bilinear between the four pixel centres around (u − ½, v − ½).
                double su = u - 0.5, sv = v - 0.5;
                int x0 = (int)Math.Floor(su), y0 = (int)Math.Floor(sv);
                double fx = su - x0, fy = sv - y0;
                int xa = Math.Clamp(x0, 0, w - 1), xb = Math.Clamp(x0 + 1, 0, w - 1);
                int ya = Math.Clamp(y0, 0, h - 1), yb = Math.Clamp(y0 + 1, 0, h - 1);
                for (int k = 0; k < ch; k++)
                {
                    double top = src[(ya * w + xa) * ch + k] * (1 - fx) + src[(ya * w + xb) * ch + k] * fx;
                    double bottom = src[(yb * w + xa) * ch + k] * (1 - fx) + src[(yb * w + xb) * ch + k] * fx;
                    double value = top * (1 - fy) + bottom * fy;
                    output[o + k] = (byte)Math.Clamp((int)(value + 0.5), 0, 255);
                }
            }
        }
        return new ImagePixels(output, w, h, ch);
    }

    // cos(90°) is 6e-17, not 0: snap so right-angle rotations are exact permutations.
    private static double Snap(double v) => Math.Abs(v) < 1e-12 ? 0 : Math.Abs(Math.Abs(v) - 1) < 1e-12 ? Math.Sign(v) : v;
}
