using TorchSharp;

namespace Jetpack.Model.Data;

/// <summary>One batch: images [b, c, h, w] float32 and labels [b] int64. Whoever holds it disposes it.</summary>
public sealed record ImageBatch(torch.Tensor Images, torch.Tensor Labels) : IDisposable
{
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}
