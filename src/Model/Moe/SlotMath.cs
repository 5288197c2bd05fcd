using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Moe;

/// <summary>The token ⇄ slot algebra both slot-based MoE layers share (Soft MoE, SpheroMoE).</summary>
internal static class SlotMath
{
    /// <summary>Checks the layer input and flattens a 4-D map [b, h, w, d] (ConvNeXt) to tokens [b, h·w, d].</summary>
    public static Tensor Tokens(Tensor x, int dim, string layer)
    {
        if (x.shape[^1] != dim || x.dim() is not (3 or 4))
            throw new ArgumentException($"{layer} expects [b, n, {dim}] or [b, h, w, {dim}], got [{string.Join(", ", x.shape)}]");
        return x.dim() == 4 ? x.reshape(x.shape[0], x.shape[1] * x.shape[2], dim) : x.alias();
    }

    /// <summary>Slots X̃[b, e, s] = Σₙ D[b, n, (e,s)] · X[b, n]: dispatch [b, n, j] and tokens [b, n, d] → [b, e, s, d].</summary>
    public static Tensor Slots(Tensor dispatch, Tensor tokens, int experts, int slotsPerExpert) =>
        torch.matmul(dispatch.transpose(1, 2), tokens).reshape(tokens.shape[0], experts, slotsPerExpert, tokens.shape[2]);

    /// <summary>Y[b, n] = Σⱼ C[b, n, j] · Ỹ[b, j]: combine [b, n, j], slot outputs [b, j, d] → the input's shape.</summary>
    public static Tensor Combine(Tensor combine, Tensor slotOutputs, long[] inputShape) =>
        torch.matmul(combine, slotOutputs).reshape(inputShape);
}
