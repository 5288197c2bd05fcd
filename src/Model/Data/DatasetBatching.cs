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

    /// <summary>
    /// Batches encoded images through an eval transform with a size, each written into its slice of a reused
    /// batch buffer (<see cref="BatchBuffers"/>) by one of <paramref name="workers"/> threads: no tensor per image and
    /// no stacking copy. An undecodable image is substituted as <see cref="IImageDataset.Get"/> does (<see cref="BadFiles"/>).
    /// </summary>
    public static (Tensor Images, Tensor Labels) Stack(IEncodedSource source, EvalTransform transform, IReadOnlyList<int> indices, int workers = 1)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(transform);
        ArgumentNullException.ThrowIfNull(indices);
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        if (indices.Count == 0)
            throw new ArgumentException("a batch needs at least one index", nameof(indices));
        if (transform.OutputShape is not { } shape)
            throw new ArgumentException("the eval transform has no size: its images cannot be batched", nameof(transform));
        foreach (var index in indices) CheckIndex(index, source.Count);
        var batch = BatchBuffers.Rent([indices.Count, .. shape]);                      // [b, c, h, w]
        var labels = new long[indices.Count];
        try
        {
            Parallel.For(0, indices.Count, new ParallelOptions { MaxDegreeOfParallelism = workers }, slot =>
                labels[slot] = source.BadFiles.Substitute(indices[slot], j =>
                {
                    using var image = source.Open(j);
                    transform.ApplyInto(image, batch.Sample(slot));
                    return (long)source.LabelOf(j);
                }));
        }
        catch (Exception e)
        {
            batch.Tensor.Dispose();
            // the first sample's error with its own type and stack (e.g. TooManyBadFilesException naming the files)
            if (e is AggregateException all) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(all.Flatten().InnerExceptions[0]).Throw();
            throw;
        }
        return (batch.Tensor, tensor(labels));
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> unless 0 ≤ index &lt; count.</summary>
    public static void CheckIndex(int index, int count)
    {
        if ((uint)index >= (uint)count)
            throw new ArgumentOutOfRangeException(nameof(index), $"index {index} is outside the dataset's {count} items");
    }
}
