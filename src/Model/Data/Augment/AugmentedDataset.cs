using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Data.Augment;

/// <summary>A dataset whose raw pixels can be read before any transform (IDX, CIFAR, ImageFolder).</summary>
public interface IPixelSource
{
    int Count { get; }
    int NumClasses { get; }
    IReadOnlyList<string> ClassNames { get; }
    int LabelOf(int index);
    ImagePixels PixelsOf(int index);
}

/// <summary>Batches whose random augmentation is a function of a batch seed, so a resumed run replays them.</summary>
public interface ISeededBatches
{
    (Tensor Images, Tensor Labels) Batch(IReadOnlyList<int> indices, ulong batchSeed);
}

/// <summary>
/// The training view of a dataset: every sample through a train transform whose randomness comes from
/// (batch seed, sample index), never from a thread's history — the same step augments the same way
/// on any thread and after a resume. A batch's samples are decoded and augmented on up to
/// <paramref name="workers"/> threads at once (data.workers). From encoded files (<see cref="IEncodedSource"/>)
/// with a <see cref="TrainTransform"/>, the decode is scaled to the crop (DCT domain) and an undecodable
/// file is substituted and counted (<see cref="BadFiles"/>).
/// </summary>
public sealed class AugmentedDataset(IPixelSource source, ITrainTransform transform, int workers = 0) : IImageDataset, ISeededBatches
{
    /// <summary>Threads decoding one batch; 0 = one per core.</summary>
    public int Workers { get; } = workers > 0 ? workers : Environment.ProcessorCount;
    public int Count => source.Count;
    public int NumClasses => source.NumClasses;
    public IReadOnlyList<string> ClassNames => source.ClassNames;
    public int LabelOf(int index) => source.LabelOf(index);
    public IPixelSource Source => source;

    public (Tensor Image, int Label) Get(int index)
    {
        var (image, label) = Sample(index, 0);
        return (image, (int)label);
    }

    public (Tensor Images, Tensor Labels) Batch(IReadOnlyList<int> indices) => Batch(indices, 0);

    public (Tensor Images, Tensor Labels) Batch(IReadOnlyList<int> indices, ulong batchSeed)
    {
        if (transform is TrainTransform { OutputShape: { } shape } train) return BatchInto(train, shape, indices, batchSeed);
        using var scope = NewDisposeScope();
        var images = new Tensor[indices.Count];
        var labels = new long[indices.Count];
        try
        {
            Parallel.For(0, indices.Count, new ParallelOptions { MaxDegreeOfParallelism = Workers }, i =>
                (images[i], labels[i]) = Sample(indices[i], batchSeed));
            var batch = torch.stack(images);                                            // [b, c, h, w]
            return (batch.MoveToOuterDisposeScope(), torch.tensor(labels).MoveToOuterDisposeScope());
        }
        catch (AggregateException e)
        {
            ThrowFirst(e);
            throw;
        }
        finally
        {
            foreach (var t in images) t?.Dispose();     // made on pool threads, outside this thread's dispose scope
        }
    }

    // A fixed output size: every sample is written by its decode thread into its slice of one reused batch buffer.
    private (Tensor Images, Tensor Labels) BatchInto(TrainTransform train, long[] shape, IReadOnlyList<int> indices, ulong batchSeed)
    {
        if (indices.Count == 0) throw new ArgumentException("a batch needs at least one index", nameof(indices));
        var batch = BatchBuffers.Rent([indices.Count, .. shape]);                       // [b, c, h, w]
        var labels = new long[indices.Count];
        try
        {
            Parallel.For(0, indices.Count, new ParallelOptions { MaxDegreeOfParallelism = Workers }, i =>
                labels[i] = SampleInto(train, indices[i], batchSeed, batch, i));
            return (batch.Tensor, torch.tensor(labels));
        }
        catch (Exception e)
        {
            batch.Tensor.Dispose();
            if (e is AggregateException all) ThrowFirst(all);
            throw;
        }
    }

    private long SampleInto(TrainTransform train, int index, ulong batchSeed, BatchBuffer batch, int slot)
    {
        if (source is IEncodedSource encoded)
            return encoded.BadFiles.Substitute(index, j =>
            {
                using var image = encoded.Open(j);
                train.ApplyInto(image, AugmentRandom.SampleSeed((long)batchSeed, 0, j), batch.Sample(slot));
                return (long)encoded.LabelOf(j);
            });
        train.ApplyInto(source.PixelsOf(index), AugmentRandom.SampleSeed((long)batchSeed, 0, index), batch.Sample(slot));
        return source.LabelOf(index);
    }

    // the first sample's error with its own type and stack (e.g. TooManyBadFilesException naming the files)
    private static void ThrowFirst(AggregateException e) =>
        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.Flatten().InnerExceptions[0]).Throw();

    private (Tensor Image, long Label) Sample(int index, ulong batchSeed)
    {
        if (source is IEncodedSource encoded && transform is TrainTransform train)
            return encoded.BadFiles.Substitute(index, j =>
            {
                using var image = encoded.Open(j);
                return (train.Apply(image, AugmentRandom.SampleSeed((long)batchSeed, 0, j)), (long)encoded.LabelOf(j));
            });
        return (transform.Apply(source.PixelsOf(index), AugmentRandom.SampleSeed((long)batchSeed, 0, index)), source.LabelOf(index));
    }
}
