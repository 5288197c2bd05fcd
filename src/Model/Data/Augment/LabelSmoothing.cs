using static TorchSharp.torch;

namespace Jetpack.Model.Data.Augment;

/// <summary>Label smoothing, timm/mmpretrain "original" mode (spec §7.1: ε = 0.1).</summary>
public static class LabelSmoothing
{
    /// <summary>
    /// Soft targets [b, classes] float32: (1 − ε) · onehot(label) + ε / K, so each row sums to 1.
    /// <paramref name="labels"/> is int64 [b]; the caller owns the result.
    /// </summary>
    public static Tensor Targets(Tensor labels, int classes, double epsilon)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.dim() != 1) throw new ArgumentException($"labels must be [b], got [{string.Join(", ", labels.shape)}]", nameof(labels));
        if (classes < 1) throw new ArgumentOutOfRangeException(nameof(classes), $"need at least one class, got {classes}");
        if (!(epsilon is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(epsilon), $"ε must be in [0, 1], got {epsilon}");
        using var scope = NewDisposeScope();
        double off = epsilon / classes, on = 1.0 - epsilon + off;
        // In float64, then rounded once to float32, so on and off are the nearest floats to their values.
        var onehot = nn.functional.one_hot(labels.to(ScalarType.Int64), classes).to(ScalarType.Float64);   // [b, K]
        var targets = (onehot * (on - off) + off).to(ScalarType.Float32);                                   // [b, K]
        return targets.MoveToOuterDisposeScope();
    }
}
