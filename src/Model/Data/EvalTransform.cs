using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Data;

/// <summary>
/// The predecessor's eval transform (spec §5.2; timm <c>transforms_imagenet_eval</c> on PIL images):
/// resize the shorter side to floor(size / crop_pct) with bicubic interpolation, centre-crop
/// size × size, scale to [0, 1], normalise per channel. Without a size (28 × 28 IDX data) only the
/// last two steps run.
/// <para>
/// Bicubic like PIL, not like Skia or plain torch: PIL resamples with the a = −0.5 (Catmull-Rom)
/// kernel stretched by the scale factor when shrinking (an antialiasing low-pass), horizontally
/// first, and rounds the intermediate image to 8 bits. torch's <c>interpolate(bicubic,
/// antialias: true)</c> is the same filter, so two separable passes with the same 8-bit rounding
/// in between reproduce PIL to within one grey level on rare pixels (fixed-point coefficient
/// rounding); measured against torchvision 0.14 + Pillow 9.4 (Data/Fixtures: bit-identical or one
/// level off on at most 0.3% of values, shrinking and enlarging). A single 2-D torch pass is off by up
/// to 3 levels, antialias: false by up to 43 (it aliases when shrinking). SkiaSharp 2.88.9 has no
/// SKSamplingOptions/cubic resampler, only SKFilterQuality, and its Low/Medium/High resize was off
/// by up to 36 levels (mean 6) shrinking the same image and 15 enlarging: a different filter.
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

    /// <summary>
    /// The same from an encoded image, decoded at the smallest JPEG scale (k/8, DCT domain) whose shorter
    /// side still reaches the resize target (<see cref="ResizeShorterSide"/>): a 500×375 JPEG for 224
    /// (resize 256) decodes at 6/8. Bicubic then resizes from that instead of the full image, so values
    /// differ slightly from PIL's full decode when a smaller scale was used.
    /// </summary>
    public Tensor Apply(EncodedImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (ResizeShorterSide is not int target) return Apply(image.Decode(Channels));
        double need = (double)target / Math.Min(image.Width, image.Height);
        return Apply(image.DecodeAtLeast((int)Math.Ceiling(image.Width * need), (int)Math.Ceiling(image.Height * need), Channels));
    }

    public Tensor Apply(ImagePixels image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Channels != Channels)
            throw new ArgumentException($"the transform wants {Channels} channel(s), the image has {image.Channels}", nameof(image));
        using var scope = NewDisposeScope();
        // h, w: image size; H, W: after resize; s: crop size
        var x = tensor(image.Data, [image.Height, image.Width, image.Channels], ScalarType.Byte)
            .permute(2, 0, 1).to(ScalarType.Float32);                            // [c, h, w], values 0..255
        if (Size is int size)
        {
            var (width, height) = ResizedSize(image.Width, image.Height, ResizeShorterSide!.Value);
            x = ResizeBicubicLikePil(x, width, height);                           // [c, H, W]
            x = x.narrow(1, CropOffset(height, size), size)
                 .narrow(2, CropOffset(width, size), size);                       // [c, s, s]
        }
        // ToTensor divides by 255, Normalize subtracts then divides, all in float32 as here.
        var mean = tensor(_mean, [Channels, 1, 1]);                               // [c, 1, 1]
        var std = tensor(_std, [Channels, 1, 1]);                                 // [c, 1, 1]
        var result = (x.div(Full) - mean) / std;                                   // [c, s, s]
        return result.contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// PIL's Image.resize(BICUBIC) on 8-bit data held as floats: horizontal pass, round to 8 bits,
    /// vertical pass, round to 8 bits; a pass whose size does not change is skipped, as PIL does.
    /// Costs two interpolations of the whole image (before the crop, as PIL).
    /// </summary>
    internal static Tensor ResizeBicubicLikePil(Tensor x /* [c, h, w] */, int width, int height)
    {
        long h = x.shape[1], w = x.shape[2];
        var y = x.unsqueeze(0);                                                   // [1, c, h, w]
        if (width != w)
            y = ToByteRange(nn.functional.interpolate(y, [h, width], mode: InterpolationMode.Bicubic,
                align_corners: false, antialias: true));                          // [1, c, h, W]
        if (height != h)
            y = ToByteRange(nn.functional.interpolate(y, [height, width], mode: InterpolationMode.Bicubic,
                align_corners: false, antialias: true));                          // [1, c, H, W]
        return y.squeeze(0);                                                      // [c, H, W]
    }

    // PIL rounds its fixed-point sums half up and clips to 0..255.
    // add(Scalar) would make its alpha = 1 as a temporary Scalar inside TorchSharp, which the GC may finalize while the
    // native add still reads it ("toFloat: Expected false to be true" with 2 decode threads): pass a held alpha.
    private static Tensor ToByteRange(Tensor y) => y.add(Half, One).floor_().clamp_(Zero, Full);

    // Scalars held for the process: an implicit float → Scalar temporary can be finalized by the GC
    // while its native call still runs (seen as "Unknown scalar type" under load with several decode
    // threads), so the transforms' hot paths use these, which are never collected.
    internal static readonly Scalar Half = 0.5f.ToScalar(), Zero = 0f.ToScalar(), Full = 255f.ToScalar(), One = 1f.ToScalar();
}
