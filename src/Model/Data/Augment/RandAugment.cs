namespace Jetpack.Model.Data.Augment;

/// <summary>The 15 ops of timm's "increasing" RandAugment list (_RAND_INCREASING_TRANSFORMS), spec §7.2.</summary>
public enum RandAugmentOp
{
    AutoContrast, Equalize, Invert, Rotate, PosterizeIncreasing, SolarizeIncreasing, SolarizeAdd,
    ColorIncreasing, ContrastIncreasing, BrightnessIncreasing, SharpnessIncreasing,
    ShearX, ShearY, TranslateXRel, TranslateYRel,
}

/// <summary>
/// RandAugment, timm "increasing" variant (spec §7.2: 2 ops, magnitude 9 of 10, std 0.5), on 8-bit
/// HWC pixels. Per image: pick <c>Ops</c> ops uniformly with replacement; each runs with
/// probability 0.5 and draws its own magnitude m ~ N(9, 0.5) clipped to [0, 10]; signed ops
/// negate their parameter with probability 0.5. With r = m / 10 the parameters are (timm's
/// _LEVEL_DENOM = 10):
/// <code>
/// op                    parameter from r = m/10                         m = 0        m = 10
/// AutoContrast          none                                            –            –
/// Equalize              none                                            –            –
/// Invert                none                                            –            –
/// Rotate                ±30·r degrees (CCW, about the centre)           0°           ±30°
/// PosterizeIncreasing   bits kept = 4 − int(4·r)                        4 bits (!)   0 bits
/// SolarizeIncreasing    threshold = 256 − int(256·r)                    256 (id.)    0 (invert)
/// SolarizeAdd           add = int(110·r) to values &lt; 128               0            +110
/// ColorIncreasing       factor = 1 ± 0.9·r                              1            0.1 / 1.9
/// ContrastIncreasing    factor = 1 ± 0.9·r                              1            0.1 / 1.9
/// BrightnessIncreasing  factor = 1 ± 0.9·r                              1            0.1 / 1.9
/// SharpnessIncreasing   factor = 1 ± 0.9·r                              1            0.1 / 1.9
/// ShearX / ShearY       ±0.3·r                                          0            ±0.3
/// TranslateXRel / YRel  ±0.45·r × width (height) pixels                 0            ±45%
/// </code>
/// Every op with a magnitude is the identity at m = 0 except PosterizeIncreasing, which keeps 4
/// bits there (timm's definition: "increasing" means stronger with m, not identity at 0).
/// Thread-safe: all randomness comes from the <see cref="AugmentRandom"/> passed in.
/// </summary>
public sealed class RandAugment
{
    public static readonly IReadOnlyList<RandAugmentOp> AllOps = Enum.GetValues<RandAugmentOp>();

    public RandAugment(RandAugmentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    public RandAugmentOptions Options { get; }

    /// <summary>The augmented image (a new one; the input is not modified).</summary>
    public ImagePixels Apply(ImagePixels image, AugmentRandom random)
    {
        for (int k = 0; k < Options.Ops; k++)
        {
            var op = AllOps[random.Int(0, AllOps.Count)];
            if (!random.Bernoulli(Options.OpProbability)) continue;
            double m = Options.Magnitude;
            if (Options.MagnitudeStd > 0) m = Math.Clamp(m + Options.MagnitudeStd * random.Normal(), 0, Options.MagnitudeMax);
            image = ApplyOp(op, image, m / Options.MagnitudeMax, negate: random.Bernoulli(0.5), Options.Fill);
        }
        return image;
    }

    /// <summary>One op at relative magnitude <paramref name="r"/> = m / max; <paramref name="negate"/> flips the sign of signed parameters.</summary>
    public static ImagePixels ApplyOp(RandAugmentOp op, ImagePixels image, double r, bool negate, IReadOnlyList<byte> fill)
    {
        double sign = negate ? -1 : 1;
        return op switch
        {
            RandAugmentOp.AutoContrast => PixelOps.AutoContrast(image),
            RandAugmentOp.Equalize => PixelOps.Equalize(image),
            RandAugmentOp.Invert => PixelOps.Invert(image),
            RandAugmentOp.Rotate => GeometricOps.Rotate(image, sign * 30 * r, fill),
            RandAugmentOp.PosterizeIncreasing => PixelOps.Posterize(image, 4 - (int)(4 * r)),
            RandAugmentOp.SolarizeIncreasing => PixelOps.Solarize(image, 256 - (int)(256 * r)),
            RandAugmentOp.SolarizeAdd => PixelOps.SolarizeAdd(image, (int)(110 * r)),
            RandAugmentOp.ColorIncreasing => PixelOps.Color(image, 1 + sign * 0.9 * r),
            RandAugmentOp.ContrastIncreasing => PixelOps.Contrast(image, 1 + sign * 0.9 * r),
            RandAugmentOp.BrightnessIncreasing => PixelOps.Brightness(image, 1 + sign * 0.9 * r),
            RandAugmentOp.SharpnessIncreasing => PixelOps.Sharpness(image, 1 + sign * 0.9 * r),
            RandAugmentOp.ShearX => GeometricOps.ShearX(image, sign * 0.3 * r, fill),
            RandAugmentOp.ShearY => GeometricOps.ShearY(image, sign * 0.3 * r, fill),
            RandAugmentOp.TranslateXRel => GeometricOps.TranslateX(image, sign * 0.45 * r * image.Width, fill),
            RandAugmentOp.TranslateYRel => GeometricOps.TranslateY(image, sign * 0.45 * r * image.Height, fill),
            _ => throw new ArgumentOutOfRangeException(nameof(op), op, "unknown RandAugment op"),
        };
    }
}
