using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Jetpack.Model.Distributed;
using Jetpack.Model.Layers;
using Jetpack.Model.Torch;

namespace Jetpack.Model.Models;

/// <summary>
/// Pre-norm transformer block (spec §2): h ← h + DropPath(ls1·Attn(LN1 h)); h ← h + DropPath(ls2·F(LN2 h)),
/// F the dense MLP or an MoE layer. Keys: norm1, attn, ls1.gamma?, norm2, mlp, ls2.gamma?.
/// </summary>
public sealed class VitBlock : nn.Module<Tensor, Tensor>, IStochasticModule
{
    private readonly LayerNorm norm1;
    private readonly Attention attn;
    private readonly LayerScale? ls1;
    private readonly LayerNorm norm2;
    private readonly nn.Module<Tensor, Tensor> mlp;
    private readonly LayerScale? ls2;

    public VitBlock(VitConfig c, int index, Device? device, ExpertShard? shard = null) : base(nameof(VitBlock))
    {
        norm1 = nn.LayerNorm(c.Dim, eps: c.NormEps, device: device);
        attn = new Attention(c.Dim, c.Heads, c.QkvBias, device);
        norm2 = nn.LayerNorm(c.Dim, eps: c.NormEps, device: device);
        int ordinal = c.Moe is { } m ? m.Layers.Count(l => l < index) : 0;          // ModelSpec.MoeLayers order
        mlp = MoeFactory.FeedForward(c.Dim, c.MlpHidden, c.Moe, index, c.Depth, c.DropRate, device, shard, ordinal);
        if (c.LayerScaleInit is { } ls)
        {
            ls1 = new LayerScale(c.Dim, ls, device);
            ls2 = new LayerScale(c.Dim, ls, device);
        }
        DropPathRate = Stochastic.LinearRate(c.DropPathRate, c.Depth, index);
        RegisterComponents();
    }

    public nn.Module<Tensor, Tensor> Mlp => mlp;
    public double DropPathRate { get; set; }
    public Generator? Generator { get; set; }

    /// <summary>x: [b, n, d] → [b, n, d].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var a = StepProbe.Region("attention", norm1.forward(x), attn.forward);     // [b, n, d]
        if (ls1 is not null) a = ls1.forward(a);
        var h = x + Stochastic.DropPath(a, DropPathRate, training, Generator);
        var f = StepProbe.Region(mlp is Mlp ? "mlp" : "moe", norm2.call(h), mlp.forward); // [b, n, d] (call: hookable, spec §5.2 (b))
        if (ls2 is not null) f = ls2.forward(f);
        h = h + Stochastic.DropPath(f, DropPathRate, training, Generator);
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>timm's LayerScale: x·γ, γ initialised to a small constant. Key: gamma.</summary>
public sealed class LayerScale : nn.Module<Tensor, Tensor>
{
    private readonly Parameter gamma;

    public LayerScale(int dim, double init, Device? device) : base(nameof(LayerScale))
    {
        gamma = Init.Param(device, dim);
        Init.Constant(gamma, init);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => x * gamma;
}
