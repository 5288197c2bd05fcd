using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Jetpack.Model.Layers;

/// <summary>timm's multi-head self-attention. Keys: qkv, proj.</summary>
public sealed class Attention : nn.Module<Tensor, Tensor>
{
    private readonly Linear qkv;
    private readonly Linear proj;
    private readonly int heads;

    public Attention(int dim, int heads, bool qkvBias, Device? device = null) : base(nameof(Attention))
    {
        this.heads = heads;
        qkv = nn.Linear(dim, dim * 3, hasBias: qkvBias, device: device);
        proj = nn.Linear(dim, dim, device: device);
        Init.TruncNormal(qkv.weight!);
        if (qkv.bias is not null) Init.Constant(qkv.bias, 0);
        Init.TruncNormal(proj.weight!); Init.Constant(proj.bias!, 0);
        RegisterComponents();
    }

    /// <summary>x: [b, n, d] → [b, n, d]. Letters: b batch, n tokens, h heads, k head dim.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], n = x.shape[1], d = x.shape[2], k = d / heads;
        var parts = qkv.forward(x)                                   // [b, n, 3d]
            .reshape(b, n, 3, heads, k).permute(2, 0, 3, 1, 4);      // [3, b, h, n, k]
        var o = nn.functional.scaled_dot_product_attention(parts[0], parts[1], parts[2]); // [b, h, n, k]
        var y = proj.call(o.transpose(1, 2).reshape(b, n, d));       // [b, n, d] (call: hookable input, spec §5.2 (c))
        return y.MoveToOuterDisposeScope();
    }
}
