namespace Jetpack.Model.Data.Augment;

/// <summary>
/// torchvision RandomResizedCrop (spec §7.2: scale 0.08–1, ratio 3/4–4/3, bicubic): a box of
/// area fraction s ~ U(scale) and aspect ratio exp(U(log ratio)) placed uniformly, up to
/// <c>Attempts</c> tries, else the centre crop clamped to the ratio range; then resized to
/// size × size with PIL's antialiased bicubic (<see cref="BicubicResize"/>).
/// </summary>
public sealed class RandomResizedCrop
{
    public RandomResizedCrop(int size, RandomResizedCropOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), $"size must be positive, got {size}");
        options.Validate();
        Size = size;
        Options = options;
    }

    public int Size { get; }
    public RandomResizedCropOptions Options { get; }

    /// <summary>The crop box (left, top, width, height), always inside the image (torchvision get_params).</summary>
    public (int Left, int Top, int Width, int Height) Box(int width, int height, AugmentRandom random)
    {
        double area = (double)width * height;
        double logMin = Math.Log(Options.MinRatio), logMax = Math.Log(Options.MaxRatio);
        for (int attempt = 0; attempt < Options.Attempts; attempt++)
        {
            double target = area * random.Uniform(Options.MinScale, Options.MaxScale);
            double ratio = Math.Exp(random.Uniform(logMin, logMax));
            int w = (int)Math.Round(Math.Sqrt(target * ratio), MidpointRounding.ToEven);
            int h = (int)Math.Round(Math.Sqrt(target / ratio), MidpointRounding.ToEven);
            if (w > 0 && w <= width && h > 0 && h <= height)
                return (random.Int(0, width - w + 1), random.Int(0, height - h + 1), w, h);
        }
        // Fallback: the whole image, narrowed to the nearest allowed aspect ratio, centred.
        double inRatio = (double)width / height;
        int cw = width, ch = height;
        if (inRatio < Options.MinRatio) ch = (int)Math.Round(cw / Options.MinRatio, MidpointRounding.ToEven);
        else if (inRatio > Options.MaxRatio) cw = (int)Math.Round(ch * Options.MaxRatio, MidpointRounding.ToEven);
        return ((width - cw) / 2, (height - ch) / 2, cw, ch);
    }

    /// <summary>Crop then bicubic-resize to Size × Size; 8-bit in, 8-bit out (PIL rounds each resize pass to 8 bits).</summary>
    public ImagePixels Apply(ImagePixels image, AugmentRandom random)
    {
        ArgumentNullException.ThrowIfNull(image);
        var (left, top, w, h) = Box(image.Width, image.Height, random);
        return CropResize(image, left, top, w, h, Size);
    }

    /// <summary>
    /// The crop [top, top + h) × [left, left + w) resized to size × size: PIL's crop then resize
    /// (<see cref="BicubicResize"/>, one C# pass per axis straight from the image, no copy of the crop).
    /// </summary>
    public static ImagePixels CropResize(ImagePixels image, int left, int top, int w, int h, int size) =>
        BicubicResize.Resize(image, size, size, new BicubicResize.Box(left, top, w, h));
}
