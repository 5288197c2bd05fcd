using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Jetpack.Model.Distributed;
using Jetpack.Model.Layers;
using Jetpack.Model.Models;
using Jetpack.Model.Torch;

namespace Jetpack.Model.Moe;

/// <summary>
/// SpheroMoE (MoE Jetpack, spec §3): Soft-MoE-style slots routed by cosine similarity on the
/// hypersphere, with learnable dispatch/combine temperatures, shared Gaussian routing noise,
/// 1.5-entmax combine, and a dual path of core (hidden 4D) and universal (hidden D) experts.
/// Keys: phi, slot_norm.{weight,bias}, scales.{0,1}, core_experts.*, univ_experts.*.
/// No auxiliary loss (spec §1).
/// Expert parallelism (DESIGN.md): built with an <see cref="ExpertShard"/>, the layer holds only
/// its rank's <see cref="ExpertRange"/> of each bank (same keys, shapes [local count, …]); routing
/// (phi, slot_norm, scales) stays replicated, and when the shard has an exchange the experts run
/// through <see cref="ExpertExchangeFunction"/>. Without a shard it is the single-process layer.
/// </summary>
public sealed class SpheroMoE : nn.Module<Tensor, Tensor>, IStochasticModule, IShardedMoe
{
    private readonly Parameter phi;
    private readonly LayerNorm slot_norm;
    private readonly ParameterList scales;
    private readonly StackedExperts core_experts;
    private readonly StackedExperts? univ_experts;

    private readonly MoeConfig config;
    private readonly int dim;
    private readonly ExpertShard? shard;
    private readonly int layerIndex;

    /// <param name="dropPath">this layer's MoE DropPath rate q_ℓ (spec §3.2 step 9)</param>
    /// <param name="shard">expert parallelism: hold only this rank's experts; null = all experts, local</param>
    /// <param name="layerIndex">the layer's ordinal among the model's MoE layers (exchange tags)</param>
    public SpheroMoE(int dim, MoeConfig config, double dropPath, Device? device = null, ExpertShard? shard = null, int layerIndex = 0)
        : base(nameof(SpheroMoE))
    {
        this.dim = dim;
        this.config = config;
        this.shard = shard;
        this.layerIndex = layerIndex;
        Range = shard?.Range(config) ?? new ExpertRange(0, config.CoreExperts, 0, config.UniversalExperts);
        DropPathRate = dropPath;
        int e = config.TotalExperts, s = config.SlotsPerExpert;
        phi = Init.Param(device, e, s, dim);
        Init.Orthogonal(phi, e * s, dim);                                    // spec §3.1
        slot_norm = nn.LayerNorm(dim, eps: 1e-5, device: device);            // fresh, eps 1e-5 (not 1e-6)
        scales = new ParameterList(Enumerable.Range(0, config.SingleTemperature ? 1 : 2)
            .Select(_ => Init.Scalar(device, config.InitialTemperature)).ToArray());
        double innerDrop = config.ExpertDrop == ExpertDropMode.Elementwise ? config.ExpertDropout : 0;
        core_experts = new StackedExperts(Range.CoreCount, dim, config.CoreHidden(dim), innerDrop, device);
        if (config.UniversalExperts > 0)           // the key exists on every rank, even one holding none of them
            univ_experts = new StackedExperts(Range.UnivCount, dim, config.UniversalHidden(dim), innerDrop, device);
        RegisterComponents();
    }

    public MoeConfig Config => config;
    /// <summary>The experts this layer holds (all of them without a shard).</summary>
    public ExpertRange Range { get; }
    public ExpertShard? Shard => shard;
    public int LayerIndex => layerIndex;
    public double DropPathRate { get; set; }
    /// <summary>Opt-in: keep <see cref="LastStatistics"/> of every forward (costs a few reductions and device syncs per layer).</summary>
    public bool CollectStatistics { get; set; }
    /// <summary>The routing statistics of the last forward while <see cref="CollectStatistics"/> is on.</summary>
    public RoutingStatistics? LastStatistics { get; private set; }
    public Generator? Generator
    {
        get => core_experts.Generator;
        set { core_experts.Generator = value; if (univ_experts is not null) univ_experts.Generator = value; }
    }

    public override Tensor forward(Tensor x) => Forward(x, noise: null);

    /// <summary>
    /// x: LN2 output, [b, n, d] or [b, h, w, d] (ConvNeXt). noise: an explicit standard-normal ξ of
    /// shape [b, n, e, s] (for parity tests and replay), scaled here by σ; null draws it when noise is on.
    /// Letters: b batch, n tokens, e experts, s slots per expert, j = e·s flattened slots, d width.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor? noise)
    {
        using var scope = NewDisposeScope();
        var xs = SlotMath.Tokens(x, dim, nameof(SpheroMoE));                                 // [b, n, d]
        long b = xs.shape[0];
        int e = config.TotalExperts, s = config.SlotsPerExpert, ec = config.CoreExperts;

        var (dispatch, combine) = StepProbe.Region("moe.routing", xs, t => Route(t, noise)); // [b, n, j] ×2
        if (CollectStatistics) LastStatistics = RoutingStatistics.Of(layerIndex, dispatch, combine, s);
        var slots = StepProbe.Region("moe.dispatch", xs, t => SlotMath.Slots(dispatch, t, e, s)); // [b, e, s, d] step 7
        var outputs = StepProbe.Region("moe.experts", slots, t => shard is null ? RunExperts(t, ec) // [b, e, s, d] step 8
            : ExpertExchangeFunction.Apply(t, new ExpertExchangeCall(shard, layerIndex, config, RunLocalExperts)));
        if (config.ExpertDrop == ExpertDropMode.PerExpert && training && config.ExpertDropout > 0)
        {
            var keep = torch.empty([b, e, 1, 1], outputs.dtype, outputs.device).bernoulli_(1 - config.ExpertDropout, Generator);
            outputs = outputs * keep / (1 - config.ExpertDropout);
        }
        var flat = Stochastic.DropPath(outputs.reshape(b, e * s, dim), DropPathRate, training, Generator); // [b, j, d] step 9
        return StepProbe.Region("moe.combine", flat, t => SlotMath.Combine(combine, t, x.shape)).MoveToOuterDisposeScope(); // [b, n, d] step 10
    }

    /// <summary>
    /// The router (spec §3.2 steps 1–6): dispatch weights (softmax over tokens) and combine weights
    /// (entmax15 or softmax over slots) for tokens xs [b, n, d]; both [b, n, j], j = e·s.
    /// </summary>
    public (Tensor Dispatch, Tensor Combine) Route(Tensor xs, Tensor? noise)
    {
        using var scope = NewDisposeScope();
        long b = xs.shape[0], n = xs.shape[1];
        int e = config.TotalExperts, s = config.SlotsPerExpert;
        var keys = xs / (xs.norm(-1, keepdim: true) + 1e-6);                                 // [b, n, d] step 1
        var q = nn.functional.layer_norm(phi, [dim], slot_norm.weight, slot_norm.bias, 1e-5); // [e, s, d] step 2
        q = q / (q.norm(-1, keepdim: true) + 1e-6);
        var logits = StepProbe.Region("moe.routing.logits", keys, k => torch.matmul(k, q.reshape(e * s, dim).t())); // [b, n, j] step 3

        var tauD = scales[0];
        var tauC = config.SingleTemperature ? scales[0] : scales[1];
        var ld = logits / tauD;                                                              // [b, n, j]
        var lc = logits / tauC;
        double sigma = config.EffectiveNoiseStd;
        if (noise is not null || (sigma > 0 && (training || config.NoiseInEval)))            // step 4: same ξ for both
        {
            var xi = noise?.reshape(b, n, e * s) ?? Stochastic.Normal([b, n, e * s], xs.dtype, xs.device, Generator);
            var scaled = xi * sigma;
            ld = ld + scaled;
            lc = lc + scaled;
        }
        var dispatch = StepProbe.Region("moe.routing.softmax", ld, t => t.softmax(1));      // [b, n, j] step 5: over tokens
        var combine = config.Combine == CombineNorm.Entmax15                                 // [b, n, j] step 6
            ? StepProbe.Region("moe.routing.entmax", lc, Entmax15.Apply) : lc.softmax(-1);
        return (dispatch.MoveToOuterDisposeScope(), combine.MoveToOuterDisposeScope());
    }

    /// <summary>Core experts take slots e &lt; E_c, universal experts the rest (dual path).</summary>
    private Tensor RunExperts(Tensor slots, int ec)
    {
        if (Range.Count != config.TotalExperts)
            throw new InvalidOperationException($"MoE layer {layerIndex} holds experts {Range} only; its forward needs an ExpertShard with an exchange");
        if (univ_experts is null) return core_experts.ForwardSlots(slots);
        var core = core_experts.ForwardSlots(slots.narrow(1, 0, ec));                       // [b, ec, s, d]
        var univ = univ_experts.ForwardSlots(slots.narrow(1, ec, slots.shape[1] - ec));     // [b, eu, s, d]
        return torch.cat([core, univ], 1);
    }

    /// <summary>
    /// This rank's experts on slots gathered from all ranks: x [B, c, s, d], c = local core then local
    /// universal experts → [B, c, s, d]. One batched call per bank; an empty bank is skipped.
    /// </summary>
    private Tensor RunLocalExperts(Tensor x)
    {
        using var scope = NewDisposeScope();
        var parts = new List<Tensor>(2);
        if (Range.CoreCount > 0) parts.Add(core_experts.ForwardSlots(x.narrow(1, 0, Range.CoreCount)));               // [B, cc, s, d]
        if (Range.UnivCount > 0) parts.Add(univ_experts!.ForwardSlots(x.narrow(1, Range.CoreCount, Range.UnivCount))); // [B, cu, s, d]
        var y = parts.Count switch { 0 => torch.zeros_like(x), 1 => parts[0], _ => torch.cat(parts, 1) };
        return y.MoveToOuterDisposeScope();
    }
}
