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
/// on any thread and after a resume.
/// </summary>
public sealed class AugmentedDataset(IPixelSource source, ITrainTransform transform) : IImageDataset, ISeededBatches
{
    public int Count => source.Count;
    public int NumClasses => source.NumClasses;
    public IReadOnlyList<string> ClassNames => source.ClassNames;
    public int LabelOf(int index) => source.LabelOf(index);

    public (Tensor Image, int Label) Get(int index) => (transform.Apply(source.PixelsOf(index), AugmentRandom.SampleSeed(0, 0, index)), source.LabelOf(index));

    public (Tensor Images, Tensor Labels) Batch(IReadOnlyList<int> indices) => Batch(indices, 0);

    public (Tensor Images, Tensor Labels) Batch(IReadOnlyList<int> indices, ulong batchSeed)
    {
        using var scope = NewDisposeScope();
        var images = new Tensor[indices.Count];
        Parallel.For(0, indices.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
            images[i] = transform.Apply(source.PixelsOf(indices[i]), AugmentRandom.SampleSeed((long)batchSeed, 0, indices[i])));
        var labels = torch.tensor(indices.Select(i => (long)source.LabelOf(i)).ToArray());
        var batch = torch.stack(images);
        foreach (var t in images) t.Dispose();          // made on pool threads, outside this thread's dispose scope
        return (batch.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }
}
