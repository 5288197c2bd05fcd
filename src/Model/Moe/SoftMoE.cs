using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Jetpack.Model.Distributed;
using Jetpack.Model.Layers;
using Jetpack.Model.Models;

namespace Jetpack.Model.Moe;

/// <summary>
/// The Soft MoE baseline as Jetpack uses it (spec §4, wrapper with slot_layernorm off):
/// K = L2(X), Q = scale·L2(Φ), dispatch = softmax over tokens, combine = softmax over all slots,
/// slots from raw X, one expert size. Φ ~ N(0, 1/D); scale init 1. Keys: phi, scale, experts.*.
/// Assumption (spec §4, documented): no routing noise by default, expert dropout as Jetpack.
/// Expert parallelism as SpheroMoE's (so baselines scale like Jetpack): built with an
/// <see cref="ExpertShard"/>, the layer holds only its rank's <see cref="ExpertRange"/> of the one
/// bank (placed as core experts, <see cref="ExpertPlacement"/>); phi and scale stay replicated and
/// the slots go through <see cref="ExpertExchangeFunction"/>.
/// </summary>
public sealed class SoftMoE : nn.Module<Tensor, Tensor>, IStochasticModule, IShardedMoe
{
    private readonly Parameter phi;
    private readonly Parameter scale;
    private readonly StackedExperts experts;
    private readonly MoeConfig config;
    private readonly int dim;
    private readonly ExpertShard? shard;
    private readonly int layerIndex;

    /// <param name="shard">expert parallelism: hold only this rank's experts; null = all experts, local</param>
    /// <param name="layerIndex">the layer's ordinal among the model's MoE layers (exchange tags)</param>
    public SoftMoE(int dim, MoeConfig config, double dropPath, Device? device = null, ExpertShard? shard = null, int layerIndex = 0) : base(nameof(SoftMoE))
    {
        this.dim = dim;
        this.config = config;
        this.shard = shard;
        this.layerIndex = layerIndex;
        Range = shard?.Range(config) ?? new ExpertRange(0, config.CoreExperts, 0, 0);
        DropPathRate = dropPath;
        int e = config.TotalExperts, s = config.SlotsPerExpert;
        phi = Init.Param(device, e, s, dim);
        Init.Normal(phi, 1.0 / Math.Sqrt(dim));
        scale = Init.Scalar(device, 1.0);
        experts = new StackedExperts(Range.CoreCount, dim, config.CoreHidden(dim), config.ExpertDropout, device);
        RegisterComponents();
    }

    public MoeConfig Config => config;
    public ExpertShard? Shard => shard;
    /// <summary>The experts this layer holds (all of them without a shard).</summary>
    public ExpertRange Range { get; }
    public double DropPathRate { get; set; }
    public Generator? Generator { get => experts.Generator; set => experts.Generator = value; }

    public override Tensor forward(Tensor x) => Forward(x, noise: null);

    /// <summary>x: [b, n, d] or [b, h, w, d]; noise: optional standard-normal [b, n, e, s].</summary>
    public Tensor Forward(Tensor x, Tensor? noise)
    {
        using var scope = NewDisposeScope();
        var xs = SlotMath.Tokens(x, dim, nameof(SoftMoE));                                   // [b, n, d]
        long b = xs.shape[0], n = xs.shape[1];
        int e = config.TotalExperts, s = config.SlotsPerExpert;

        var keys = xs / (xs.norm(-1, keepdim: true) + 1e-6);                                 // [b, n, d]
        var q = scale * (phi / (phi.norm(-1, keepdim: true) + 1e-6));                        // [e, s, d]
        var logits = torch.matmul(keys, q.reshape(e * s, dim).t());                          // [b, n, j]
        double sigma = config.EffectiveNoiseStd;
        if (noise is not null || (sigma > 0 && (training || config.NoiseInEval)))
            logits = logits + (noise?.reshape(b, n, e * s) ?? Stochastic.Normal([b, n, e * s], xs.dtype, xs.device, Generator)) * sigma;
        var dispatch = logits.softmax(1);                                                    // [b, n, j] over tokens
        var combine = logits.softmax(-1);                                                    // [b, n, j] over slots

        var slots = SlotMath.Slots(dispatch, xs, e, s);                                      // [b, e, s, d]
        Tensor expertOut;                                                                    // [b, e, s, d]
        if (shard is not null)
            expertOut = ExpertExchangeFunction.Apply(slots, new ExpertExchangeCall(shard, layerIndex, config, RunLocalExperts));
        else if (Range.CoreCount == e) expertOut = experts.ForwardSlots(slots);
        else throw new InvalidOperationException($"Soft MoE layer {layerIndex} holds experts {Range} only; its forward needs an ExpertShard with an exchange");
        var outputs = expertOut.reshape(b, e * s, dim);                                      // [b, j, d]
        outputs = Stochastic.DropPath(outputs, DropPathRate, training, Generator);
        return SlotMath.Combine(combine, outputs, x.shape).MoveToOuterDisposeScope();       // [b, n, d]
    }

    /// <summary>This rank's experts on slots gathered from the group: x [B, c, s, d] → [B, c, s, d] (an empty shard gives zeros).</summary>
    private Tensor RunLocalExperts(Tensor x) => Range.CoreCount > 0 ? experts.ForwardSlots(x) : torch.zeros_like(x);
}
