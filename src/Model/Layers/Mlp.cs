using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Jetpack.Model.Layers;

/// <summary>timm's Mlp: fc1 → act (exact-erf GELU) → dropout → fc2 → dropout. Keys: fc1, fc2.
/// <c>act</c> is a module (no parameters) and is invoked with <c>call</c>, so activation profiling
/// can hook its output (spec §5.2 hook (a)).</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly GELU act;
    private readonly Linear fc2;
    private readonly double drop;

    public Mlp(int dim, int hidden, double drop = 0, Device? device = null) : base(nameof(Mlp))
    {
        fc1 = nn.Linear(dim, hidden, device: device);
        act = nn.GELU();
        fc2 = nn.Linear(hidden, dim, device: device);
        this.drop = drop;
        Init.TruncNormal(fc1.weight!); Init.Constant(fc1.bias!, 0);
        Init.TruncNormal(fc2.weight!); Init.Constant(fc2.bias!, 0);
        RegisterComponents();
    }

    public int Hidden => (int)fc1.weight!.shape[0];

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = act.call(fc1.forward(x));                            // [..., H]
        h = nn.functional.dropout(h, drop, training);
        var y = nn.functional.dropout(fc2.forward(h), drop, training); // [..., D]
        return y.MoveToOuterDisposeScope();
    }
}
