using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Jetpack.Model.Data.Augment;

/// <summary>
/// RandomErasing (spec §7.2: p 0.25, mode rand, area 0.02–1/3, aspect 0.3–3.3) on the normalised
/// float [c, h, w] tensor. mmpretrain's mode rand with fill_color = mean and fill_std = std fills
/// each pixel with N(mean, std) in pixel space, which after normalisation is N(0, 1) per pixel and
/// channel — drawn here from the sample's generator. Up to <c>Attempts</c> boxes are tried; if none
/// fits, nothing is erased.
/// </summary>
public sealed class RandomErasing
{
    public RandomErasing(RandomErasingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    public RandomErasingOptions Options { get; }

    /// <summary>The box (left, top, width, height) to erase, or null (not drawn, or no attempt fitted).</summary>
    public (int Left, int Top, int Width, int Height)? Box(int width, int height, AugmentRandom random)
    {
        if (!random.Bernoulli(Options.Probability)) return null;
        double area = (double)width * height;
        double logMin = Math.Log(Options.MinAspect), logMax = Math.Log(Options.MaxAspect);
        for (int attempt = 0; attempt < Options.Attempts; attempt++)
        {
            double target = area * random.Uniform(Options.MinArea, Options.MaxArea);
            double aspect = Math.Exp(random.Uniform(logMin, logMax));
            int h = (int)Math.Round(Math.Sqrt(target * aspect), MidpointRounding.ToEven);
            int w = (int)Math.Round(Math.Sqrt(target / aspect), MidpointRounding.ToEven);
            if (w > 0 && h > 0 && w < width && h < height)
                return (random.Int(0, width - w + 1), random.Int(0, height - h + 1), w, h);
        }
        return null;
    }

    /// <summary>Erases in place on <paramref name="image"/> [c, h, w] (owned by the caller) and returns the box, if any.</summary>
    public (int Left, int Top, int Width, int Height)? ApplyInPlace(Tensor image, AugmentRandom random)
    {
        if (image.dim() != 3) throw new ArgumentException($"expected [c, h, w], got [{string.Join(", ", image.shape)}]", nameof(image));
        long c = image.shape[0];
        var box = Box((int)image.shape[2], (int)image.shape[1], random);
        if (box is not var (left, top, w, h)) return null;
        using var scope = NewDisposeScope();
        var noise = randn([c, h, w], ScalarType.Float32, generator: random.Generator);   // [c, bh, bw]
        image.narrow(1, top, h).narrow(2, left, w).copy_(noise);
        return box;
    }

    /// <summary>
    /// The same on [c, h, w] values held outside torch (e.g. a sample's slice of a batch buffer): the same draws,
    /// the noise from the same generator call, copied into the box.
    /// </summary>
    public (int Left, int Top, int Width, int Height)? ApplyInPlace(Span<float> image, int channels, int height, int width, AugmentRandom random)
    {
        if (image.Length != channels * height * width)
            throw new ArgumentException($"expected [{channels}, {height}, {width}] = {channels * height * width} values, got {image.Length}", nameof(image));
        var box = Box(width, height, random);
        if (box is not var (left, top, w, h)) return null;
        using var scope = NewDisposeScope();
        var noise = randn([channels, h, w], ScalarType.Float32, generator: random.Generator);   // [c, bh, bw], contiguous
        var values = MemoryMarshal.Cast<byte, float>(noise.bytes);
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < h; y++)
                values.Slice((c * h + y) * w, w).CopyTo(image.Slice((c * height + top + y) * width + left, w));
        return box;
    }
}
