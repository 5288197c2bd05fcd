using Jetpack.Model.Data;
using TorchSharp;

namespace Jetpack.Model.Tests.Data;

public sealed class TensorDatasetTests
{
    [Fact]
    public void ReturnsFloatCopiesAndGathersBatches()
    {
        using var images = torch.arange(2 * 1 * 2 * 2, dtype: torch.ScalarType.Int32).reshape(2, 1, 2, 2); // [n, c, h, w]
        using var labels = torch.tensor(new long[] { 1, 0 });
        using var dataset = new TensorDataset(images, labels, numClasses: 2, ["cat", "dog"]);

        Assert.Equal(2, dataset.Count);
        Assert.Equal(["cat", "dog"], dataset.ClassNames);
        var (image, label) = dataset.Get(1);
        using (image)
        {
            Assert.Equal(0, label);
            Assert.Equal(torch.ScalarType.Float32, image.dtype);
            Assert.Equal(new[] { 4f, 5f, 6f, 7f }, image.data<float>().ToArray());
            image.add_(100);                                   // a copy: the dataset is unchanged
        }
        var (batch, batchLabels) = dataset.Batch([1, 1, 0]);
        using (batch)
        using (batchLabels)
        {
            Assert.Equal(new long[] { 3, 1, 2, 2 }, batch.shape);
            Assert.Equal(new[] { 4f, 5f, 6f, 7f, 4f, 5f, 6f, 7f, 0f, 1f, 2f, 3f }, batch.data<float>().ToArray());
            Assert.Equal(new long[] { 0, 0, 1 }, batchLabels.data<long>().ToArray());
        }
    }

    [Fact]
    public void OutlivesTheCallersHandle()
    {
        TensorDataset dataset;
        using (var images = torch.ones(3, 1, 2, 2))
        using (var labels = torch.zeros(3, dtype: torch.ScalarType.Int64))
            dataset = new TensorDataset(images, labels, numClasses: 1);
        using (dataset)
        {
            var (image, _) = dataset.Get(2);
            using (image)
                Assert.Equal(4f, image.sum().item<float>());
        }
    }

    [Fact]
    public void BadShapesAndLabelsAreRefused()
    {
        using var images = torch.zeros(2, 1, 2, 2);
        Assert.Throws<ArgumentException>(() => new TensorDataset(torch.zeros(2, 2, 2), torch.zeros(2, dtype: torch.ScalarType.Int64), 1));
        Assert.Throws<ArgumentException>(() => new TensorDataset(images, torch.zeros(3, dtype: torch.ScalarType.Int64), 1));
        Assert.Throws<ArgumentException>(() => new TensorDataset(images, torch.zeros(2), 1));
        var error = Assert.Throws<ArgumentException>(() => new TensorDataset(images, torch.tensor(new long[] { 0, 2 }), 2));
        Assert.Contains("label 2 at index 1", error.Message);
    }
}
