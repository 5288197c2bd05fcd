using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Layers;
using Jetpack.Model.Moe;

namespace Jetpack.Model.Models;

/// <summary>Builds the feed-forward part of a block: the dense MLP or the configured MoE layer.</summary>
internal static class MoeFactory
{
    /// <param name="blockIndex">index used for the MoE DropPath rate rule q = linspace(0, max, depth)[i]</param>
    public static nn.Module<Tensor, Tensor> FeedForward(int dim, int denseHidden, MoeConfig? moe, int blockIndex,
                                                        int depth, double drop, Device? device)
    {
        if (moe is null || !moe.Layers.Contains(blockIndex))
            return new Mlp(dim, denseHidden, drop, device);
        double q = Stochastic.LinearRate(moe.MoeDropPathRate, depth, blockIndex);
        return moe.Kind switch
        {
            MoeKind.Sphero => new SpheroMoE(dim, moe, q, device),
            MoeKind.Soft => new SoftMoE(dim, moe, q, device),
            _ => throw new ArgumentOutOfRangeException(nameof(moe), moe.Kind, "unknown MoE kind"),
        };
    }
}
