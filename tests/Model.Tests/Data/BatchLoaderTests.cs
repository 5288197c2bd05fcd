using System.Collections.Concurrent;
using Jetpack.Model.Data;
using Jetpack.Model.Tests.Checkpoints;
using TorchSharp;

namespace Jetpack.Model.Tests.Data;

/// <summary>Order, bounded prefetch, error propagation and clean disposal of the background batch loader.</summary>
public sealed class BatchLoaderTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void YieldsEveryBatchInOrderEvenWhenALaterOneFinishesFirst()
    {
        // Batch 0 cannot finish before batch 1 has been built, so the ring must reorder.
        var batch1Built = new ManualResetEventSlim();
        var dataset = new ScriptedDataset(23, (first, _) =>
        {
            if (first == 0) Assert.True(batch1Built.Wait(Patience), "batch 1 was never built while batch 0 waited");
            if (first == 5) batch1Built.Set();
        });
        var loader = new BatchLoader(dataset, [.. Enumerable.Range(0, 23)], batchSize: 5, workers: 2, prefetch: 2);
        Assert.Equal(5, loader.BatchCount);

        var seen = new List<long>();
        foreach (var (images, labels) in loader)
        {
            using (images)
            using (labels)
            {
                Assert.Equal(images.shape[0], labels.shape[0]);
                seen.AddRange(labels.data<long>().ToArray());
                using var pixel = images[.., 0, 0, 0];
                Assert.Equal(labels.data<long>().ToArray().Select(l => (float)l), pixel.data<float>().ToArray());
            }
        }
        Assert.Equal(Enumerable.Range(0, 23).Select(i => (long)i), seen);
        Assert.Equal(4, new BatchLoader(dataset, [.. Enumerable.Range(0, 23)], 5, dropLast: true).BatchCount);
    }

    [Fact]
    public void FollowsTheGivenIndexList()
    {
        var dataset = new ScriptedDataset(10, (_, _) => { });
        int[] order = [9, 3, 3, 0, 7];
        var seen = new List<long>();
        foreach (var batch in new BatchLoader(dataset, order, batchSize: 2, workers: 3))
        {
            using (batch)
                seen.AddRange(batch.Labels.data<long>().ToArray());
        }
        Assert.Equal(order.Select(i => (long)i), seen);
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchLoader(dataset, [10], 1));
    }

    /// <summary>With the consumer holding batch 0, workers build batches 1..prefetch and then stop.</summary>
    [Fact]
    public void PrefetchBoundsHowFarWorkersRunAhead()
    {
        int started = 0;
        var dataset = new ScriptedDataset(40, (_, _) => Interlocked.Increment(ref started));
        using var run = new BatchLoader(dataset, [.. Enumerable.Range(0, 40)], batchSize: 2, workers: 4, prefetch: 3).GetEnumerator();

        Assert.True(run.MoveNext());
        using (run.Current)
        {
            Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref started) >= 4, Patience), "workers did not fill the window");
            Thread.Sleep(200); // a negative cannot be awaited: give a runaway worker time to show itself
            Assert.Equal(4, Volatile.Read(ref started)); // batch 0 (held) + 3 prefetched
        }
    }

    [Fact]
    public void WorkerErrorSurfacesOnTheConsumerNamingTheFile()
    {
        for (int i = 0; i < 6; i++)
            Write($"a/{i}.png", TestImages.Png(8, 8, TestImages.Solid((byte)i, 0, 0)));
        var corrupt = Write("a/4.png", [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);
        var dataset = new ImageFolderDataset(_dir.FullPath, EvalTransform.Predecessor(8));

        using var run = new BatchLoader(dataset, [.. Enumerable.Range(0, 6)], batchSize: 2, workers: 2, prefetch: 2).GetEnumerator();
        for (int k = 0; k < 2; k++)
        {
            Assert.True(run.MoveNext());
            run.Current.Dispose();
        }
        var error = Assert.Throws<TooManyBadFilesException>(() => run.MoveNext());
        Assert.Contains(corrupt, error.Message);
        Assert.False(run.MoveNext());
    }

    /// <summary>Breaking out early stops the workers and disposes every batch they built that was not handed out.</summary>
    [Fact]
    public void DisposingEarlyReleasesUndeliveredBatches()
    {
        var built = new ConcurrentBag<torch.Tensor>();
        var dataset = new ScriptedDataset(100, (_, images) => built.Add(images));
        var run = new BatchLoader(dataset, [.. Enumerable.Range(0, 100)], batchSize: 4, workers: 2, prefetch: 4).GetEnumerator();
        Assert.True(run.MoveNext());
        var delivered = run.Current;
        run.Dispose();

        Assert.False(run.MoveNext());
        Assert.InRange(built.Count, 1, 1 + 4 + 2); // held + window + one in flight per worker at most
        Assert.All(built.Where(t => !ReferenceEquals(t, delivered.Images)), t => Assert.True(t.IsInvalid, "an undelivered batch was not disposed"));
        Assert.False(delivered.Images.IsInvalid);
        delivered.Dispose();
    }

    [Fact]
    public void LoaderBatchesEqualDirectBatches()
    {
        for (int i = 0; i < 5; i++)
            Write($"{(i < 2 ? "a" : "b")}/{i}.png", TestImages.Png(20 + i, 15, (x, y) => ((byte)(x * 9), (byte)(y * 13), (byte)(i * 40), 255)));
        var dataset = new ImageFolderDataset(_dir.FullPath, EvalTransform.Predecessor(16));
        int k = 0;
        foreach (var (images, labels) in new BatchLoader(dataset, [4, 0, 2, 1, 3], batchSize: 2))
        {
            var (expected, expectedLabels) = dataset.Batch(new[] { 4, 0, 2, 1, 3 }.Skip(2 * k++).Take(2).ToArray());
            using (images) using (labels) using (expected) using (expectedLabels)
            {
                TensorAssert.Identical(expected, images);
                TensorAssert.Identical(expectedLabels, labels);
            }
        }
        Assert.Equal(3, k);
    }

    private string Write(string relative, byte[] bytes)
    {
        var path = _dir.File(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Item i is a [1, 1, 1] image of value i with label i; Batch calls a hook (first index, images) before returning.</summary>
    private sealed class ScriptedDataset(int count, Action<int, torch.Tensor> onBatch) : IImageDataset
    {
        public int Count => count;
        public int NumClasses => count;
        public IReadOnlyList<string> ClassNames => [.. Enumerable.Range(0, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))];
        public int LabelOf(int index) => index;
        public (torch.Tensor Image, int Label) Get(int index) => (torch.full(1, 1, 1, (float)index), index);

        public (torch.Tensor Images, torch.Tensor Labels) Batch(IReadOnlyList<int> indices)
        {
            var images = torch.tensor(indices.Select(i => (float)i).ToArray()).reshape(indices.Count, 1, 1, 1);
            onBatch(indices[0], images);
            return (images, torch.tensor(indices.Select(i => (long)i).ToArray()));
        }
    }
}
