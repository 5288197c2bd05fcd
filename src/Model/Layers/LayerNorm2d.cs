using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Jetpack.Model.Layers;

/// <summary>LayerNorm over the channels of a channels-first map [b, c, h, w] (timm's LayerNorm2d). Keys: weight, bias.</summary>
public sealed class LayerNorm2d : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly double eps;

    public LayerNorm2d(int channels, double eps, Device? device) : base(nameof(LayerNorm2d))
    {
        this.eps = eps;
        weight = Init.Param(device, channels);
        bias = Init.Param(device, channels);
        Init.Constant(weight, 1);
        Init.Constant(bias, 0);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.layer_norm(x.permute(0, 2, 3, 1), [weight.shape[0]], weight, bias, eps); // [b, h, w, c]
        return y.permute(0, 3, 1, 2).MoveToOuterDisposeScope();                                       // [b, c, h, w]
    }
}
