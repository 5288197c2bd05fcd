using System.Buffers;
using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Data;

/// <summary>
/// The predecessor's eval transform (spec §5.2; timm <c>transforms_imagenet_eval</c> on PIL images):
/// resize the shorter side to floor(size / crop_pct) with bicubic interpolation, centre-crop
/// size × size, scale to [0, 1], normalise per channel. Without a size (28 × 28 IDX data) only the
/// last two steps run.
/// <para>
/// Bicubic like PIL, not like Skia or plain torch: <see cref="BicubicResize"/> is PIL's resampler (the a = −0.5
/// kernel stretched when shrinking, horizontal pass first, 8-bit fixed point), so a PNG comes out as torchvision
/// + Pillow make it, to the bit (Data/Fixtures). It computes only the centre crop's pixels of the resized image,
/// and the normalisation is a table lookup (<see cref="PixelNormalizer"/>): no torch op per image. Earlier,
/// two torch <c>interpolate(bicubic, antialias: true)</c> passes with 8-bit rounding between them were within one
/// level of PIL on ≤ 0.3% of values; a single 2-D torch pass is off by up to 3 levels, antialias: false by up to
/// 43. SkiaSharp has no cubic resampler matching PIL's (its filter qualities were off by up to 36 levels).
/// </para>
/// Immutable and thread-safe.
/// </summary>
public sealed class EvalTransform : IImageTransform
{
    /// <summary>timm's IMAGENET_DEFAULT_MEAN / IMAGENET_DEFAULT_STD.</summary>
    public static readonly IReadOnlyList<float> ImageNetMean = [0.485f, 0.456f, 0.406f];
    public static readonly IReadOnlyList<float> ImageNetStd = [0.229f, 0.224f, 0.225f];

    private readonly float[] _mean;
    private readonly float[] _std;
    private readonly PixelNormalizer _normalizer;

    /// <param name="size">Output side after the centre crop; null: no resize and no crop.</param>
    /// <param name="cropPct">Crop fraction in (0, 1]: the shorter side is first resized to floor(size / cropPct).</param>
    /// <param name="mean">Per-channel mean; its length (1 or 3) is the channel count.</param>
    /// <param name="std">Per-channel standard deviation, positive, as many as <paramref name="mean"/>.</param>
    public EvalTransform(int? size, double cropPct, IReadOnlyList<float> mean, IReadOnlyList<float> std)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (size is < 1)
            throw new ArgumentOutOfRangeException(nameof(size), $"size must be positive, got {size}");
        if (!(cropPct > 0 && cropPct <= 1))
            throw new ArgumentOutOfRangeException(nameof(cropPct), $"crop_pct must be in (0, 1], got {cropPct}");
        if (mean.Count is not (1 or 3) || std.Count != mean.Count)
            throw new ArgumentException($"mean and std need 1 or 3 matching entries, got {mean.Count} and {std.Count}", nameof(mean));
        if (std.Any(s => !(s > 0) || !float.IsFinite(s)) || mean.Any(m => !float.IsFinite(m)))
            throw new ArgumentException($"std must be positive and finite, mean finite: mean [{string.Join(", ", mean)}], std [{string.Join(", ", std)}]", nameof(std));
        Size = size;
        CropPct = cropPct;
        _mean = [.. mean];
        _std = [.. std];
        _normalizer = new PixelNormalizer(mean, std);
    }

    /// <summary>timm ViT augreg (the predecessors of §5.1): crop_pct 0.9, mean = std = 0.5; 224 → resize 248.</summary>
    public static EvalTransform Predecessor(int size = 224) => new(size, 0.9, [0.5f, 0.5f, 0.5f], [0.5f, 0.5f, 0.5f]);

    /// <summary>timm's default ImageNet eval: crop_pct 0.875 (224 → 256), ImageNet mean and std.</summary>
    public static EvalTransform ImageNet(int size = 224, double cropPct = 0.875) => new(size, cropPct, ImageNetMean, ImageNetStd);

    /// <summary>Scale to [0, 1] and normalise only, e.g. for 28 × 28 MNIST-style data.</summary>
    public static EvalTransform ScaleNormalize(IReadOnlyList<float> mean, IReadOnlyList<float> std) => new(null, 1.0, mean, std);

    public int? Size { get; }
    public double CropPct { get; }
    public IReadOnlyList<float> Mean => _mean;
    public IReadOnlyList<float> Std => _std;
    public int Channels => _mean.Length;

    /// <summary>
    /// The shorter side before cropping: floor(size / crop_pct), as timm computes it (224 / 0.9 =
    /// 248.9 → 248; rounding would give 249). Null without a size.
    /// </summary>
    public int? ResizeShorterSide => Size is int s ? (int)Math.Floor(s / CropPct) : null;

    /// <summary>
    /// torchvision's Resize(int) output (width, height): the shorter side becomes <paramref name="shorter"/>,
    /// the longer one int(shorter · long / short), truncated as Python's int() does.
    /// </summary>
    public static (int Width, int Height) ResizedSize(int width, int height, int shorter)
    {
        int shortSide = Math.Min(width, height), longSide = Math.Max(width, height);
        int newLong = (int)((double)((long)shorter * longSide) / shortSide);
        return width <= height ? (shorter, newLong) : (newLong, shorter);
    }

    /// <summary>torchvision's centre-crop offset: int(round((side − crop) / 2)), Python's round (half to even).</summary>
    public static int CropOffset(int side, int crop) => (int)Math.Round((side - crop) / 2.0, MidpointRounding.ToEven);

    /// <summary>The output shape [c, size, size], or null without a size (then it is the image's).</summary>
    public long[]? OutputShape => Size is int s ? [Channels, s, s] : null;

    /// <summary>
    /// The same from an encoded image, decoded at the smallest JPEG scale (k/8, DCT domain) whose shorter
    /// side still reaches the resize target (<see cref="ResizeShorterSide"/>): a 500×375 JPEG for 224
    /// (resize 256) decodes at 6/8. Bicubic then resizes from that instead of the full image, so values
    /// differ slightly from PIL's full decode when a smaller scale was used.
    /// </summary>
    public Tensor Apply(EncodedImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (OutputShape is not { } shape) return Apply(image.Decode(Channels));
        var values = new float[shape[0] * shape[1] * shape[2]];
        ApplyInto(image, values);
        return tensor(values, shape);
    }

    /// <summary>
    /// <see cref="Apply(EncodedImage)"/> written to <paramref name="destination"/> ([c, size, size] floats, e.g. a
    /// sample's slice of a <see cref="BatchBuffer"/>): no tensor per image. Needs a <see cref="Size"/>.
    /// </summary>
    public void ApplyInto(EncodedImage image, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (ResizeShorterSide is not int target) throw new InvalidOperationException("a transform without a size has no fixed output to write into");
        double need = (double)target / Math.Min(image.Width, image.Height);
        int minWidth = (int)Math.Ceiling(image.Width * need), minHeight = (int)Math.Ceiling(image.Height * need);
        if (Channels == 1)
        {
            ApplyInto(image.DecodeAtLeast(minWidth, minHeight, 1), destination);
            return;
        }
        // Decode only what the centre crop reads (BicubicResize.Needed), as RGBA read in place (no copy to RGB).
        var (width, height) = image.ScaledSize(minWidth, minHeight);
        var (resizedWidth, resizedHeight) = ResizedSize(width, height, target);
        var window = CropWindow(resizedWidth, resizedHeight);
        var (left, right) = BicubicResize.Needed(width, resizedWidth, window.Left, window.Width);
        var (top, bottom) = BicubicResize.Needed(height, resizedHeight, window.Top, window.Height);
        using var rgba = image.DecodeRgbaRegion(width, height, new BicubicResize.Box(left, top, right - left, bottom - top));
        ResizeCropNormalize(rgba.Data, rgba.Width, width, height, 4, destination, rgba.Left, rgba.Top);
    }

    public Tensor Apply(ImagePixels image)
    {
        CheckChannels(image);
        var shape = OutputShape ?? [Channels, image.Height, image.Width];
        var values = new float[shape[0] * shape[1] * shape[2]];
        ApplyInto(image, values);
        return tensor(values, shape);
    }

    /// <summary><see cref="Apply(ImagePixels)"/> written to <paramref name="destination"/> ([c, h, w] floats).</summary>
    public void ApplyInto(ImagePixels image, Span<float> destination)
    {
        CheckChannels(image);
        if (Size is null) _normalizer.Write(image.Data, image.Width, image.Height, flip: false, destination);
        else ResizeCropNormalize(image.Data, image.Width, image.Width, image.Height, image.Channels, destination);
    }

    private void CheckChannels(ImagePixels image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Channels != Channels)
            throw new ArgumentException($"the transform wants {Channels} channel(s), the image has {image.Channels}", nameof(image));
    }

    // Resize the shorter side of a width × height image to ResizeShorterSide, keep the centre size × size, normalise.
    // Only the crop's pixels of the resized image are computed (BicubicResize's window): the same values as resizing
    // all, then cropping. pixels: rows of sourceWidth pixels from the image's (originX, originY), holding what the crop reads.
    private void ResizeCropNormalize(ReadOnlySpan<byte> pixels, int sourceWidth, int width, int height, int pixelBytes, Span<float> destination,
        int originX = 0, int originY = 0)
    {
        int size = Size!.Value;
        var (resizedWidth, resizedHeight) = ResizedSize(width, height, ResizeShorterSide!.Value);
        var crop = ArrayPool<byte>.Shared.Rent(size * size * Channels);
        try
        {
            BicubicResize.Resize(pixels, sourceWidth, pixelBytes, Channels, BicubicResize.Box.Whole(width, height), resizedWidth, resizedHeight,
                CropWindow(resizedWidth, resizedHeight), crop, originX, originY);
            _normalizer.Write(crop, size, size, flip: false, destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(crop);
        }
    }

    // The centre size × size of the resized image (torchvision CenterCrop).
    private BicubicResize.Box CropWindow(int resizedWidth, int resizedHeight) =>
        new(CropOffset(resizedWidth, Size!.Value), CropOffset(resizedHeight, Size.Value), Size.Value, Size.Value);

    // Scalars held for the process: an implicit float → Scalar temporary can be finalized by the GC
    // while its native call still runs (seen as "Unknown scalar type" and "toFloat: Expected false to be true" under
    // load with several decode threads; also alpha = 1 that add(Scalar) makes inside TorchSharp), so torch code on
    // decode threads uses these, which are never collected.
    internal static readonly Scalar Half = 0.5f.ToScalar(), Zero = 0f.ToScalar(), Full = 255f.ToScalar(), One = 1f.ToScalar();
}
