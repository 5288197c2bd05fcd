using TorchSharp;

namespace Jetpack.Model.Data;

/// <summary>Turns a decoded image into the tensor a model sees (torchvision's transform pipeline).</summary>
public interface IImageTransform
{
    /// <summary>Channels the transform wants from the decoder: 1 (grayscale) or 3 (RGB).</summary>
    int Channels { get; }

    /// <summary>
    /// The float32 [c, h, w] tensor for <paramref name="image"/>, which has <see cref="Channels"/>
    /// channels. The caller owns the result. Must be safe to call from several threads at once.
    /// </summary>
    torch.Tensor Apply(ImagePixels image);
}
