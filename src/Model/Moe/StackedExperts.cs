using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Jetpack.Model.Layers;

namespace Jetpack.Model.Moe;

/// <summary>
/// A bank of two-layer GELU MLP experts run batched (spec §3.2 step 8):
/// f(x) = Drop_p(W₂·Drop_p(GELU(W₁x + b₁)) + b₂). Keys: vit_fc1.{weight,bias}, vit_fc2.{weight,bias}.
/// </summary>
public sealed class StackedExperts : nn.Module<Tensor, Tensor>, IStochasticModule
{
    private readonly StackedLinear vit_fc1;
    private readonly StackedLinear vit_fc2;

    public StackedExperts(int experts, int dim, int hidden, double dropout, Device? device) : base(nameof(StackedExperts))
    {
        vit_fc1 = new StackedLinear(experts, dim, hidden, device);
        vit_fc2 = new StackedLinear(experts, hidden, dim, device);
        Dropout = dropout;
        RegisterComponents();
    }

    public int Count => (int)vit_fc1.weight.shape[0];
    public int Hidden => (int)vit_fc1.weight.shape[1];
    public double Dropout { get; set; }
    public Generator? Generator { get; set; }

    /// <summary>x: [e, t, d] (t = tokens routed to each expert, here b·s slots) → [e, t, d].</summary>
    public override Tensor forward(Tensor x)
    {
        if (x.dim() != 3 || x.shape[0] != Count)
            throw new ArgumentException($"experts expect [{Count}, t, d], got [{string.Join(", ", x.shape)}]");
        using var scope = NewDisposeScope();
        var h = nn.functional.gelu(vit_fc1.forward(x));                          // [e, t, h]
        h = Stochastic.Dropout(h, Dropout, training, Generator);
        var y = Stochastic.Dropout(vit_fc2.forward(h), Dropout, training, Generator); // [e, t, d]
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>Runs slots laid out [b, e, s, d] and returns outputs in the same layout.</summary>
    public Tensor ForwardSlots(Tensor slots)
    {
        using var scope = NewDisposeScope();
        long b = slots.shape[0], e = slots.shape[1], s = slots.shape[2], d = slots.shape[3];
        var x = slots.permute(1, 0, 2, 3).reshape(e, b * s, d);                   // [e, b·s, d]
        var y = forward(x).reshape(e, b, s, d).permute(1, 0, 2, 3);               // [b, e, s, d]
        return y.MoveToOuterDisposeScope();
    }
}
