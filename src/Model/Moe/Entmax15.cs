using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Moe;

/// <summary>
/// 1.5-entmax along the last dimension (spec §3.3): a sparse alternative to softmax whose rows
/// sum to 1. Forward: on contiguous fp32 CPU tensors the sort-free kernel (<see cref="Entmax15Kernel"/>),
/// elsewhere (GPUs, other dtypes) the closed form in tensor ops (sort, cumulative sums, threshold τ*);
/// both give the same τ*. Backward hand-written: with g = √p, ∂ℓ/∂z = g⊙u − (Σ g⊙u / Σ g)·g.
/// </summary>
public static class Entmax15
{
    /// <summary>p = entmax15(z) over the last dim; differentiable.</summary>
    public static Tensor Apply(Tensor z) => Function.apply(z);

    /// <summary>The forward map alone (no graph): p = max(0, z/2 − τ*)², z shifted by its max.</summary>
    public static Tensor Forward(Tensor z) =>
        Entmax15Kernel.Applies(z) && !z.requires_grad ? Entmax15Kernel.Forward(z) : ForwardTensorOps(z);

    /// <summary>The forward in tensor ops (any device and dtype; differentiable through sort, cumsum and gather).</summary>
    public static Tensor ForwardTensorOps(Tensor z)
    {
        using var scope = NewDisposeScope();
        long k = z.shape[^1];
        var x = (z - z.amax(new long[] { -1 }, keepdim: true)) / 2;       // [..., K]
        var sorted = x.sort(-1, descending: true).Values;                    // [..., K]
        var rank = torch.arange(1, k + 1, dtype: z.dtype, device: z.device); // [K]
        var mean = sorted.cumsum(-1) / rank;                                 // μ_k
        var meanSq = sorted.square().cumsum(-1) / rank;
        var ss = rank * (meanSq - mean.square());                            // s_k
        var delta = ((1 - ss) / rank).clamp_min(0);
        var tau = mean - delta.sqrt();                                       // τ_k
        var support = (tau <= sorted).sum(-1, keepdim: true, type: ScalarType.Int64); // k* ≥ 1
        var tauStar = tau.gather(-1, support - 1);                           // [..., 1]
        return (x - tauStar).clamp_min(0).square().MoveToOuterDisposeScope();
    }

    /// <summary>The analytic vector-Jacobian product given p = entmax15(z) and upstream u.</summary>
    public static Tensor Backward(Tensor p, Tensor u)
    {
        using var scope = NewDisposeScope();
        var g = p.sqrt();                                                    // [..., K]
        var gu = g * u;
        var q = gu.sum(-1, keepdim: true) / g.sum(-1, keepdim: true);        // [..., 1]
        return (gu - q * g).MoveToOuterDisposeScope();
    }

    private sealed class Function : autograd.SingleTensorFunction<Function>
    {
        public override string Name => "Entmax15";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var z = (Tensor)vars[0];
            Tensor p;
            using (no_grad()) p = Entmax15Kernel.Applies(z) ? Entmax15Kernel.Forward(z) : ForwardTensorOps(z);
            ctx.save_for_backward([p]);
            return p;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            // Pure tensor maths; an exception escaping here would abort the process (ENVIRONMENT.md).
            var p = ctx.get_saved_variables()[0];
            return [Backward(p, gradOutput)];
        }
    }
}
