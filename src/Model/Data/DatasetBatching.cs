using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Data;

/// <summary>Shared helpers for <see cref="IImageDataset"/> implementations.</summary>
public static class DatasetBatching
{
    /// <summary>
    /// Batches by calling <see cref="IImageDataset.Get"/> per index and stacking (one copy of every
    /// image into the batch). All images must have the same shape; the error names the first index
    /// whose shape differs (e.g. an ImageFolder without a resizing transform).
    /// </summary>
    public static (Tensor Images, Tensor Labels) Stack(IImageDataset dataset, IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(indices);
        if (indices.Count == 0)
            throw new ArgumentException("a batch needs at least one index", nameof(indices));
        using var scope = NewDisposeScope();
        var images = new Tensor[indices.Count];
        var labels = new long[indices.Count];
        for (int i = 0; i < indices.Count; i++)
        {
            (images[i], labels[i]) = dataset.Get(indices[i]);                      // [c, h, w]
            if (i > 0 && !images[i].shape.SequenceEqual(images[0].shape))
                throw new InvalidOperationException(
                    $"cannot batch: index {indices[i]} has shape [{string.Join(", ", images[i].shape)}], " +
                    $"index {indices[0]} has [{string.Join(", ", images[0].shape)}]; use a transform with a fixed size");
        }
        var stacked = stack(images);                                              // [b, c, h, w]
        var labelTensor = tensor(labels);                                         // [b]
        return (stacked.MoveToOuterDisposeScope(), labelTensor.MoveToOuterDisposeScope());
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> unless 0 ≤ index &lt; count.</summary>
    public static void CheckIndex(int index, int count)
    {
        if ((uint)index >= (uint)count)
            throw new ArgumentOutOfRangeException(nameof(index), $"index {index} is outside the dataset's {count} items");
    }
}
