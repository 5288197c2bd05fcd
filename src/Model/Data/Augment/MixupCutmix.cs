using static TorchSharp.torch;

namespace Jetpack.Model.Data.Augment;

/// <summary>Batch mixing options (spec §7.2: Mixup α 0.8 or CutMix α 1.0, chosen uniformly per batch; label smoothing 0.1 from §7.1).</summary>
public sealed record MixupCutmixOptions
{
    /// <summary>Mixup's Beta(α, α); null turns Mixup off.</summary>
    public double? MixupAlpha { get; init; } = 0.8;

    /// <summary>CutMix's Beta(α, α); null turns CutMix off.</summary>
    public double? CutmixAlpha { get; init; } = 1.0;

    /// <summary>Probability of CutMix when both are on (timm switch_prob).</summary>
    public double SwitchProbability { get; init; } = 0.5;

    public double LabelSmoothing { get; init; } = 0.1;
}

/// <summary>Which mix a batch received and its λ (after CutMix's area correction).</summary>
public readonly record struct MixInfo(bool Cutmix, double Lambda, int Top, int Left, int Height, int Width);

/// <summary>
/// Per-batch Mixup / CutMix (spec §7.2), timm's batch mode: the batch is mixed with itself in
/// reversed order (sample b with B − 1 − b). Mixup: x = λ x + (1 − λ) x_rev, λ ~ Beta(0.8, 0.8).
/// CutMix: λ ~ Beta(1, 1); a box of side √(1 − λ) × (h, w) centred uniformly, clipped to the
/// image, is pasted from x_rev, and λ is corrected to 1 − box area / image area. Targets:
/// λ · y′ + (1 − λ) · y′_rev with y′ the ε-smoothed one-hots. Deterministic from the generator.
/// </summary>
public sealed class MixupCutmix
{
    public MixupCutmix(MixupCutmixOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MixupAlpha is <= 0 || options.CutmixAlpha is <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), $"alphas must be positive, got {options.MixupAlpha}, {options.CutmixAlpha}");
        if (!(options.SwitchProbability is >= 0 and <= 1))
            throw new ArgumentOutOfRangeException(nameof(options), $"switch probability must be in [0, 1], got {options.SwitchProbability}");
        Options = options;
    }

    public MixupCutmixOptions Options { get; }

    /// <summary>
    /// Mixed images [b, c, h, w] and soft targets [b, K] float32 for <paramref name="images"/> and
    /// int64 <paramref name="labels"/> [b]; inputs are not modified, the caller owns the results.
    /// With both mixes off only label smoothing applies.
    /// </summary>
    public (Tensor Images, Tensor Targets, MixInfo Info) Apply(Tensor images, Tensor labels, int classes, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        using var scope = NewDisposeScope();
        var (mixed, targets, info) = ApplyPaired(images, labels, images.flip(0), labels.flip(0), classes, generator);
        return (mixed.MoveToOuterDisposeScope(), targets.MoveToOuterDisposeScope(), info);
    }

    /// <summary>
    /// The same mix with explicit partners: sample b is mixed with <paramref name="partners"/>[b]
    /// (labels <paramref name="partnerLabels"/>[b]). <see cref="Apply"/> is this with the reversed
    /// batch; expert parallelism passes each rank the mirror slice of the global batch, so every rank
    /// mixes exactly as one process would. λ and the box come from the generator alone, not the batch.
    /// </summary>
    public (Tensor Images, Tensor Targets, MixInfo Info) ApplyPaired(Tensor images, Tensor labels, Tensor partners, Tensor partnerLabels,
                                                                     int classes, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(partners);
        ArgumentNullException.ThrowIfNull(partnerLabels);
        if (images.dim() != 4 || labels.dim() != 1 || labels.shape[0] != images.shape[0])
            throw new ArgumentException($"need images [b, c, h, w] and labels [b], got [{string.Join(", ", images.shape)}] and [{string.Join(", ", labels.shape)}]");
        if (!partners.shape.SequenceEqual(images.shape) || !partnerLabels.shape.SequenceEqual(labels.shape))
            throw new ArgumentException($"partners [{string.Join(", ", partners.shape)}] must match images [{string.Join(", ", images.shape)}]");
        var random = new AugmentRandom(generator);
        bool cutmix = Options.CutmixAlpha is not null &&
            (Options.MixupAlpha is null || random.Bernoulli(Options.SwitchProbability));
        int h = (int)images.shape[2], w = (int)images.shape[3];

        using var scope = NewDisposeScope();
        var reversed = partners;                                                          // [b, c, h, w]
        Tensor mixed;
        MixInfo info;
        if (cutmix)
        {
            double lambda = random.Beta(Options.CutmixAlpha!.Value, Options.CutmixAlpha.Value);
            var (top, left, bh, bw) = CutmixBox(h, w, lambda, random);
            mixed = images.clone();                                                       // [b, c, h, w]
            if (bh > 0 && bw > 0)
                mixed.narrow(2, top, bh).narrow(3, left, bw).copy_(reversed.narrow(2, top, bh).narrow(3, left, bw));
            info = new MixInfo(true, 1.0 - (double)bh * bw / ((double)h * w), top, left, bh, bw);
        }
        else if (Options.MixupAlpha is double alpha)
        {
            double lambda = random.Beta(alpha, alpha);
            mixed = images * (float)lambda + reversed * (float)(1 - lambda);              // [b, c, h, w]
            info = new MixInfo(false, lambda, 0, 0, 0, 0);
        }
        else
        {
            mixed = images.clone();
            info = new MixInfo(false, 1.0, 0, 0, 0, 0);
        }
        var smoothed = LabelSmoothing.Targets(labels, classes, Options.LabelSmoothing);    // [b, K]
        var partnerSmoothed = LabelSmoothing.Targets(partnerLabels, classes, Options.LabelSmoothing); // [b, K]
        var targets = smoothed * (float)info.Lambda + partnerSmoothed * (float)(1 - info.Lambda);   // [b, K]
        return (mixed.MoveToOuterDisposeScope(), targets.MoveToOuterDisposeScope(), info);
    }

    /// <summary>
    /// timm rand_bbox: cut = int(side · √(1 − λ)), centre uniform over the image, half-cut each way
    /// clipped to the image. Returns (top, left, height, width) of the clipped box.
    /// </summary>
    public static (int Top, int Left, int Height, int Width) CutmixBox(int h, int w, double lambda, AugmentRandom random)
    {
        double ratio = Math.Sqrt(1 - lambda);
        int cutH = (int)(h * ratio), cutW = (int)(w * ratio);
        int cy = random.Int(0, h), cx = random.Int(0, w);
        int y0 = Math.Clamp(cy - cutH / 2, 0, h), y1 = Math.Clamp(cy + cutH / 2, 0, h);
        int x0 = Math.Clamp(cx - cutW / 2, 0, w), x1 = Math.Clamp(cx + cutW / 2, 0, w);
        return (y0, x0, y1 - y0, x1 - x0);
    }
}
