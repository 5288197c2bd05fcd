using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Distributed;
using Jetpack.Model.Layers;
using Jetpack.Model.Moe;

namespace Jetpack.Model.Models;

/// <summary>Builds the feed-forward part of a block: the dense MLP or the configured MoE layer.</summary>
internal static class MoeFactory
{
    /// <param name="blockIndex">index used for the MoE DropPath rate rule q = linspace(0, max, depth)[i]</param>
    /// <param name="shard">expert parallelism; null = every expert local</param>
    /// <param name="moeOrdinal">the layer's ordinal among the model's MoE layers, in <c>ModelSpec.MoeLayers</c> order</param>
    public static nn.Module<Tensor, Tensor> FeedForward(int dim, int denseHidden, MoeConfig? moe, int blockIndex,
                                                        int depth, double drop, Device? device,
                                                        ExpertShard? shard = null, int moeOrdinal = 0)
    {
        if (moe is null || !moe.Layers.Contains(blockIndex))
            return new Mlp(dim, denseHidden, drop, device);
        double q = Stochastic.LinearRate(moe.MoeDropPathRate, depth, blockIndex);
        return moe.Kind switch
        {
            MoeKind.Sphero => new SpheroMoE(dim, moe, q, device, shard, moeOrdinal),
            MoeKind.Soft => new SoftMoE(dim, moe, q, device, shard, moeOrdinal),
            _ => throw new ArgumentOutOfRangeException(nameof(moe), moe.Kind, "unknown MoE kind"),
        };
    }
}
