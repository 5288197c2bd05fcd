using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Jetpack.Model.Layers;

/// <summary>Image → patch tokens with one strided conv. Key: proj.</summary>
public sealed class PatchEmbed : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d proj;
    private readonly int imageSize, inChannels;

    public PatchEmbed(int imageSize, int patchSize, int inChannels, int dim, Device? device = null) : base(nameof(PatchEmbed))
    {
        this.imageSize = imageSize;
        this.inChannels = inChannels;
        proj = nn.Conv2d(inChannels, dim, patchSize, stride: patchSize, device: device);
        RegisterComponents();
    }

    /// <summary>x: [b, c, H, W] → [b, p, d] with p = (H/patch)·(W/patch).</summary>
    public override Tensor forward(Tensor x)
    {
        if (x.dim() != 4 || x.shape[1] != inChannels || x.shape[2] != imageSize || x.shape[3] != imageSize)
            throw new ArgumentException($"PatchEmbed expects images [b, {inChannels}, {imageSize}, {imageSize}], got [{string.Join(", ", x.shape)}]");
        using var scope = NewDisposeScope();
        return proj.forward(x).flatten(2).transpose(1, 2).MoveToOuterDisposeScope(); // [b, p, d]
    }
}
