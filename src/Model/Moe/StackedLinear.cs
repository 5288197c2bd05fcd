using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Jetpack.Model.Layers;
using Jetpack.Model.Torch;

namespace Jetpack.Model.Moe;

/// <summary>
/// A linear map per expert, stacked on dimension 0 so that a shard of experts is a slice:
/// weight [e, out, in], bias [e, out]. Keys: weight, bias.
/// Forward y = x·Wᵀ + b (one batched GEMM). Backward hand-written (issue 21): autograd would form the
/// weight gradient as xᵀ·g in [e, in, out], a fresh full-size tensor, and add its transpose into .grad
/// in a second pass; here gW = gᵀ·x is accumulated straight into the weight's .grad (see
/// <see cref="AccumulateWeightGradient"/>). gx = g·W and gb = Σ_t g go back through autograd as usual.
/// </summary>
public sealed class StackedLinear : nn.Module<Tensor, Tensor>
{
    public readonly Parameter weight;
    public readonly Parameter bias;

    public StackedLinear(int experts, int inFeatures, int outFeatures, Device? device) : base(nameof(StackedLinear))
    {
        weight = Init.Param(device, experts, outFeatures, inFeatures);
        bias = Init.Param(device, experts, outFeatures);
        // Spec §3.1: kaiming_uniform(a=√5) on the 3-D tensor; PyTorch's fan_in of [e, out, in] is
        // out·in, so the bound is 1/√(out·in). Biases 0. (Recycling overwrites both.)
        if (!Init.ExpertsDeferred)
        {
            Init.Uniform(weight, 1.0 / Math.Sqrt((double)inFeatures * outFeatures));
            Init.Constant(bias, 0);
        }
        RegisterComponents();
    }

    /// <summary>x: [e, t, in] → [e, t, out]. Letters: e experts, t tokens per expert, in/out widths.</summary>
    public override Tensor forward(Tensor x)
    {
        if (x.dim() != 3 || x.shape[0] != weight.shape[0] || x.shape[2] != weight.shape[2])
            throw new ArgumentException($"stacked linear [{string.Join(", ", weight.shape)}] expects [{weight.shape[0]}, t, {weight.shape[2]}], got [{string.Join(", ", x.shape)}]");
        return Function.apply(x, weight, bias);
    }

    /// <summary>The same map in plain torch ops, differentiated by autograd (the reference the tests hold the backward to).</summary>
    internal static Tensor ForwardTensorOps(Tensor x, Tensor weight, Tensor bias) =>
        torch.bmm(x, weight.transpose(1, 2)) + bias.unsqueeze(1);                     // [e, t, out]

    /// <summary>
    /// weight.grad += gᵀ·x per expert (g [e, t, out], x [e, t, in] → [e, out, in], the parameter's own
    /// layout). On contiguous fp32 CPU gradients one in-place batched GEMM (<see cref="BatchedGemm"/>:
    /// no temporary, no second pass); elsewhere one bmm and an add_; with no .grad yet (bf16 shadows,
    /// the first step) the bmm's result becomes the .grad as it is, with no copy.
    /// </summary>
    internal static void AccumulateWeightGradient(Tensor weight, Tensor g, Tensor x)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var gc = g.contiguous();                                                       // [e, t, out] (no copy when contiguous)
        var xc = x.contiguous();                                                       // [e, t, in]
        var grad = weight.grad;
        if (grad is null) weight.grad = WeightGradient(gc, xc);                        // [e, out, in]
        else if (BatchedGemm.Applies(grad, gc, xc)) BatchedGemm.AccumulateTransposedA(grad, gc, xc);
        else grad.add_(WeightGradient(gc, xc));
    }

    /// <summary>
    /// gᵀ·x → [e, out, in] in a new tensor. On the CPU in bf16, gᵀ is copied contiguous first (a copy of
    /// the activation-sized g): oneDNN's batched bf16 GEMM with a transposed first operand took 27 ms
    /// for a V-JetMoE-T core fc1, against 12 ms for the copy and the GEMM (1 thread).
    /// </summary>
    private static Tensor WeightGradient(Tensor g, Tensor x)
    {
        var gt = g.transpose(1, 2);                                                    // [e, out, t]
        if (g.device_type == DeviceType.CPU && g.dtype != ScalarType.Float32) gt = gt.contiguous();
        return torch.bmm(gt, x);
    }

    private sealed class Function : autograd.SingleTensorFunction<Function>
    {
        public override string Name => nameof(StackedLinear);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            Tensor x = (Tensor)vars[0], weight = (Tensor)vars[1], bias = (Tensor)vars[2];
            ctx.save_for_backward([x, weight]);
            var y = torch.bmm(x, weight.transpose(1, 2));                              // [e, t, out]
            return y.add_(bias.unsqueeze(1));
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor g)
        {
            // Pure tensor maths; an exception escaping here would abort the process (ENVIRONMENT.md).
            using var scope = NewDisposeScope();
            var saved = ctx.get_saved_variables();
            Tensor x = saved[0], weight = saved[1];
            var gx = x.requires_grad ? torch.bmm(g, weight) : null;                   // [e, t, in]
            var gb = g.sum(1);                                                         // [e, out]
            Tensor? gw = null;
            if (weight.requires_grad)
            {
                // Written into .grad here and not returned (nothing left for autograd's accumulation) —
                // unless a graph of the backward is being built or the weight is not a leaf: then the
                // gradient goes back through autograd like any other.
                if (is_grad_enabled() || !weight.is_leaf) gw = WeightGradient(g, x);       // [e, out, in]
                else AccumulateWeightGradient(weight, g, x);
            }
            gx?.MoveToOuterDisposeScope(); gb.MoveToOuterDisposeScope(); gw?.MoveToOuterDisposeScope();
            return [gx!, gw!, gb];
        }
    }
}
