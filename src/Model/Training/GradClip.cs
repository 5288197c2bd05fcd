using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Jetpack.Model.Training;

/// <summary>Gradient-norm clipping, spec §7.2 (max L2 norm 5.0 over all parameters together).</summary>
public static class GradClip
{
    /// <summary>
    /// Scales every gradient by min(1, maxNorm / (‖g‖ + 1e-6)), where ‖g‖ is the L2 norm of all
    /// gradients concatenated, and returns ‖g‖ before clipping. Squares are summed in fp64 so a
    /// 265M-element sum loses nothing. Costs one device sync per parameter (the .item()). A
    /// non-finite norm leaves the gradients untouched: the caller sees it and can skip the step.
    /// </summary>
    public static double ClipByGlobalNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), $"max norm must be positive, got {maxNorm}");
        var grads = parameters.Select(p => p.grad).OfType<Tensor>().ToList();
        double sumSquares = 0;
        using (no_grad())
        {
            foreach (var g in grads)
            {
                using var flat = g.reshape(-1).to(ScalarType.Float64);   // a transient fp64 copy of one gradient
                using var sq = flat.dot(flat);
                sumSquares += sq.item<double>();
            }
            double total = Math.Sqrt(sumSquares);
            if (!double.IsFinite(total)) return total;
            double coef = maxNorm / (total + 1e-6);
            if (coef < 1)
                foreach (var g in grads) g.mul_(coef);
            return total;
        }
    }
}
