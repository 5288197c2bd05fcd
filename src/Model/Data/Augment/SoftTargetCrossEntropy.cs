using static TorchSharp.torch;

namespace Jetpack.Model.Data.Augment;

/// <summary>Cross-entropy against soft targets (Mixup/CutMix and smoothed labels, spec §7.2).</summary>
public static class SoftTargetCrossEntropy
{
    /// <summary>
    /// mean over the batch of −Σ_k y_k · log_softmax(logits)_k; <paramref name="logits"/> and
    /// <paramref name="softTargets"/> are [b, K]. Differentiable in the logits; a scalar the caller owns.
    /// </summary>
    public static Tensor Loss(Tensor logits, Tensor softTargets)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(softTargets);
        if (logits.dim() != 2 || !logits.shape.SequenceEqual(softTargets.shape))
            throw new ArgumentException(
                $"logits [{string.Join(", ", logits.shape)}] and targets [{string.Join(", ", softTargets.shape)}] must both be [b, K]", nameof(softTargets));
        using var scope = NewDisposeScope();
        var logProbs = nn.functional.log_softmax(logits, 1);                            // [b, K]
        var perSample = -(softTargets.to(logProbs.dtype) * logProbs).sum(dim: 1);       // [b]
        return perSample.mean().MoveToOuterDisposeScope();                            // []
    }
}
