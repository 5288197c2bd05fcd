using TorchSharp.Modules;
using static TorchSharp.torch;
using Jetpack.Model.Torch;

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
        var list = parameters.ToList();
        double total = Math.Sqrt(SumOfSquares(list));
        ScaleTo(list, maxNorm, total);
        return total;
    }

    /// <summary>
    /// Σ g² over the parameters' gradients, in fp64. Contiguous fp32/bf16 CPU gradients: one
    /// multi-threaded pass over their storage (<see cref="AdamWKernel.SumOfSquares"/>, no copies);
    /// otherwise a transient fp64 copy and one device sync per parameter.
    /// </summary>
    public static double SumOfSquares(IEnumerable<Parameter> parameters)
    {
        double sumSquares = 0;
        using var _ = no_grad();
        using var scope = NewDisposeScope();                                 // the p.grad wrappers
        var grads = parameters.Select(p => p.grad).OfType<Tensor>().ToList();
        if (grads.All(g => RawTensor.Walkable(g, ScalarType.Float32) || RawTensor.Walkable(g, ScalarType.BFloat16)))
            unsafe
            {
                return AdamWKernel.SumOfSquares(
                    [.. grads.Where(g => g.dtype == ScalarType.Float32).Select(g => ((IntPtr)RawTensor.Address(g), g.numel()))],
                    [.. grads.Where(g => g.dtype == ScalarType.BFloat16).Select(g => ((IntPtr)RawTensor.Address(g), g.numel()))]);
            }
        foreach (var g in grads)
        {
            using var flat = g.reshape(-1).to(ScalarType.Float64);   // a transient fp64 copy of one gradient
            using var sq = flat.dot(flat);
            sumSquares += sq.item<double>();
        }
        return sumSquares;
    }

    /// <summary>
    /// Scales the gradients by min(1, maxNorm / (total + 1e-6)) given the global norm
    /// <paramref name="total"/> (expert parallelism: computed from all ranks' parts). Non-finite: untouched.
    /// </summary>
    public static void ScaleTo(IEnumerable<Parameter> parameters, double maxNorm, double total)
    {
        double coef = Coefficient(maxNorm, total);
        if (coef == 1) return;
        using var _ = no_grad();
        foreach (var g in parameters.Select(p => p.grad).OfType<Tensor>()) g.mul_(coef);
    }

    /// <summary>
    /// The clipping factor min(1, maxNorm / (total + 1e-6)); 1 for a non-finite norm. The fused
    /// optimizer applies it on the fly (<see cref="AdamW.Step(double)"/>) instead of a pass over the gradients.
    /// </summary>
    public static double Coefficient(double maxNorm, double total)
    {
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), $"max norm must be positive, got {maxNorm}");
        if (!double.IsFinite(total)) return 1;
        return Math.Min(1, maxNorm / (total + 1e-6));
    }
}
