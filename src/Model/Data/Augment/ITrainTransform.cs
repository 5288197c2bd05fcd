using TorchSharp;

namespace Jetpack.Model.Data.Augment;

/// <summary>
/// A random transform whose randomness is a function of a per-sample seed, so a sample's
/// augmentation is the same whichever loader thread decodes it (seed it with
/// <see cref="AugmentRandom.SampleSeed"/>(run seed, epoch, index)).
/// </summary>
public interface ITrainTransform : IImageTransform
{
    /// <summary>The float32 [c, h, w] tensor for <paramref name="image"/>; the caller owns it. Thread-safe.</summary>
    torch.Tensor Apply(ImagePixels image, ulong sampleSeed);
}
