namespace Jetpack.Model.Data.Augment;

/// <summary>
/// The per-image training augmentation of spec §7.2, each part switchable (null = off). Defaults
/// are the released IN-1k config: RandomResizedCrop 224 (scale 0.08–1, ratio 3/4–4/3, bicubic),
/// flip 0.5, RandAugment timm_increasing (2 ops, m 9/10, std 0.5), ImageNet normalisation,
/// RandomErasing p 0.25 mode rand, area 0.02–1/3.
/// </summary>
public sealed record AugmentOptions
{
    /// <summary>Output side; the image is resized/cropped to Size × Size. Null with <see cref="Crop"/> off keeps the input size.</summary>
    public int? Size { get; init; } = 224;

    /// <summary>Channels the decoder should produce (1 for Fashion-MNIST, 3 otherwise).</summary>
    public int Channels { get; init; } = 3;

    public RandomResizedCropOptions? Crop { get; init; } = new();

    /// <summary>Probability of a horizontal flip; 0 turns it off.</summary>
    public double FlipProbability { get; init; } = 0.5;

    public RandAugmentOptions? RandAugment { get; init; } = new();

    /// <summary>
    /// Per-channel mean and std on the 0..1 scale; spec §7.2 gives them on 0..255:
    /// (123.675, 116.28, 103.53) / 255 and (58.395, 57.12, 57.375) / 255, i.e. timm's ImageNet constants.
    /// </summary>
    public IReadOnlyList<float> Mean { get; init; } = EvalTransform.ImageNetMean;
    public IReadOnlyList<float> Std { get; init; } = EvalTransform.ImageNetStd;

    public RandomErasingOptions? Erasing { get; init; } = new();

    /// <summary>The spec §7.2 IN-1k pipeline at <paramref name="size"/>.</summary>
    public static AugmentOptions ImageNet(int size = 224) => new() { Size = size };

    /// <summary>
    /// 28 × 28 grayscale (Fashion-MNIST): a milder crop (scale 0.35–1), flip, RandAugment on one
    /// channel, erasing; normalised with Fashion-MNIST's mean/std. Every part can still be switched off.
    /// </summary>
    public static AugmentOptions FashionMnist() => new()
    {
        Size = 28,
        Channels = 1,
        Crop = new RandomResizedCropOptions { MinScale = 0.35 },
        RandAugment = new RandAugmentOptions { Fill = [0] },   // the data's black background
        Mean = [0.2860f],
        Std = [0.3530f],
    };

    /// <summary>Throws if a value is out of range (called by <see cref="TrainTransform"/>).</summary>
    public void Validate()
    {
        if (Size is < 1) throw new ArgumentOutOfRangeException(nameof(Size), $"size must be positive, got {Size}");
        if (Channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(Channels), $"channels must be 1 or 3, got {Channels}");
        if (Crop is not null && Size is null) throw new ArgumentException("RandomResizedCrop needs a Size", nameof(Crop));
        if (!(FlipProbability is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(FlipProbability), $"must be in [0, 1], got {FlipProbability}");
        if (Mean.Count != Channels || Std.Count != Channels)
            throw new ArgumentException($"{Channels} channel(s) need as many mean/std values, got {Mean.Count} and {Std.Count}", nameof(Mean));
        if (Std.Any(s => !(s > 0))) throw new ArgumentException($"std must be positive, got [{string.Join(", ", Std)}]", nameof(Std));
        Crop?.Validate();
        RandAugment?.Validate();
        Erasing?.Validate();
    }
}

/// <summary>torchvision RandomResizedCrop parameters (spec §7.2).</summary>
public sealed record RandomResizedCropOptions
{
    public double MinScale { get; init; } = 0.08;
    public double MaxScale { get; init; } = 1.0;
    public double MinRatio { get; init; } = 3.0 / 4.0;
    public double MaxRatio { get; init; } = 4.0 / 3.0;
    public int Attempts { get; init; } = 10;

    public void Validate()
    {
        if (!(MinScale > 0 && MinScale <= MaxScale && MaxScale <= 1))
            throw new ArgumentOutOfRangeException(nameof(MinScale), $"need 0 < min ≤ max ≤ 1, got {MinScale}–{MaxScale}");
        if (!(MinRatio > 0 && MinRatio <= MaxRatio))
            throw new ArgumentOutOfRangeException(nameof(MinRatio), $"need 0 < min ≤ max, got {MinRatio}–{MaxRatio}");
        if (Attempts < 1) throw new ArgumentOutOfRangeException(nameof(Attempts), $"need at least one attempt, got {Attempts}");
    }
}

/// <summary>timm RandAugment "rand-m9-mstd0.5-inc1" (spec §7.2): <see cref="Ops"/> ops per image, each applied with <see cref="OpProbability"/>.</summary>
public sealed record RandAugmentOptions
{
    public int Ops { get; init; } = 2;
    public double Magnitude { get; init; } = 9;
    public double MagnitudeStd { get; init; } = 0.5;
    public double MagnitudeMax { get; init; } = 10;

    /// <summary>timm's AugmentOp prob (and mmpretrain's BaseAugTransform default): 0.5.</summary>
    public double OpProbability { get; init; } = 0.5;

    /// <summary>Fill for pixels a geometric op uncovers: timm's ImageNet mean in 0..255, (124, 116, 104); one value for gray.</summary>
    public IReadOnlyList<byte> Fill { get; init; } = [124, 116, 104];

    public void Validate()
    {
        if (Ops < 0) throw new ArgumentOutOfRangeException(nameof(Ops), $"must be non-negative, got {Ops}");
        if (!(MagnitudeMax > 0 && Magnitude >= 0 && MagnitudeStd >= 0))
            throw new ArgumentOutOfRangeException(nameof(Magnitude), $"need magnitude ≥ 0, std ≥ 0, max > 0; got {Magnitude}, {MagnitudeStd}, {MagnitudeMax}");
        if (!(OpProbability is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(OpProbability), $"must be in [0, 1], got {OpProbability}");
        if (Fill.Count is not (1 or 3)) throw new ArgumentException($"fill needs 1 or 3 values, got {Fill.Count}", nameof(Fill));
    }
}

/// <summary>RandomErasing (spec §7.2): p 0.25, area fraction 0.02–1/3, aspect 0.3–3.3 (log-uniform), per-pixel N(0, 1) fill after normalisation.</summary>
public sealed record RandomErasingOptions
{
    public double Probability { get; init; } = 0.25;
    public double MinArea { get; init; } = 0.02;
    public double MaxArea { get; init; } = 1.0 / 3.0;
    public double MinAspect { get; init; } = 0.3;
    public double MaxAspect { get; init; } = 1 / 0.3;
    public int Attempts { get; init; } = 10;

    public void Validate()
    {
        if (!(Probability is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(Probability), $"must be in [0, 1], got {Probability}");
        if (!(MinArea > 0 && MinArea <= MaxArea && MaxArea <= 1))
            throw new ArgumentOutOfRangeException(nameof(MinArea), $"need 0 < min ≤ max ≤ 1, got {MinArea}–{MaxArea}");
        if (!(MinAspect > 0 && MinAspect <= MaxAspect))
            throw new ArgumentOutOfRangeException(nameof(MinAspect), $"need 0 < min ≤ max, got {MinAspect}–{MaxAspect}");
        if (Attempts < 1) throw new ArgumentOutOfRangeException(nameof(Attempts), $"need at least one attempt, got {Attempts}");
    }
}
