using TorchSharp;

namespace Jetpack.Model.Data;

/// <summary>
/// A labelled image dataset with random access, like a torchvision dataset: index → (image after
/// the dataset's transform, label). Implementations are safe to read from several threads at once
/// (<see cref="BatchLoader"/> does).
/// </summary>
public interface IImageDataset
{
    int Count { get; }

    int NumClasses { get; }

    /// <summary>Class names by label index.</summary>
    IReadOnlyList<string> ClassNames { get; }

    /// <summary>The label of <paramref name="index"/> without decoding the image.</summary>
    int LabelOf(int index);

    /// <summary>The float32 [c, h, w] image after the transform, and its label. The caller owns the tensor.</summary>
    (torch.Tensor Image, int Label) Get(int index);

    /// <summary>Images [b, c, h, w] float32 and labels [b] int64 for <paramref name="indices"/>, in order. The caller owns both.</summary>
    (torch.Tensor Images, torch.Tensor Labels) Batch(IReadOnlyList<int> indices);
}
