using System.Buffers.Binary;
using System.IO.Compression;
using Jetpack.Model.Data;
using Jetpack.Model.Tests.Checkpoints;
using TorchSharp;

namespace Jetpack.Model.Tests.Data;

/// <summary>IDX files written by hand here (raw and gzip), and Debian's Fashion-MNIST when installed.</summary>
public sealed class IdxDatasetTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly EvalTransform Identity = EvalTransform.ScaleNormalize([0f], [1f]);

    /// <summary>Image i of a 2 × 3 set has pixel (r, c) = 10·i + 3·r + c; labels are given.</summary>
    private (string Images, string Labels) WriteSet(byte[] labels, bool gzip, string prefix = "train")
    {
        var pixels = new byte[labels.Length * 6];
        for (int i = 0; i < labels.Length; i++)
            for (int p = 0; p < 6; p++)
                pixels[6 * i + p] = (byte)(10 * i + p);
        var images = Write($"{prefix}-images-idx3-ubyte", Idx(IdxFile.ImagesMagic, [labels.Length, 2, 3], pixels), gzip);
        var labelFile = Write($"{prefix}-labels-idx1-ubyte", Idx(IdxFile.LabelsMagic, [labels.Length], labels), gzip);
        return (images, labelFile);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadsRawAndGzipFiles(bool gzip)
    {
        var (images, labels) = WriteSet([3, 0, 9], gzip);
        var dataset = IdxDataset.Open(images, labels, Identity);

        Assert.Equal(3, dataset.Count);
        Assert.Equal(10, dataset.NumClasses);
        Assert.Equal((2, 3), (dataset.Height, dataset.Width));
        Assert.Equal([3, 0, 9], Enumerable.Range(0, 3).Select(dataset.LabelOf));
        var (image, label) = dataset.Get(2);
        using (image)
        {
            Assert.Equal(9, label);
            Assert.Equal(new long[] { 1, 2, 3 }, image.shape);
            Assert.Equal(Enumerable.Range(20, 6).Select(v => v / 255f), image.data<float>().ToArray());
        }
    }

    [Fact]
    public void OpenSplitFindsGzipFilesAndThreeChannelTransformsGetGrey()
    {
        WriteSet([1, 2], gzip: true, prefix: "t10k");
        var dataset = IdxDataset.OpenSplit(_dir.FullPath, "t10k", EvalTransform.ScaleNormalize([0f, 0f, 0f], [1f, 1f, 1f]),
            new IdxOptions { ClassNames = IdxDataset.FashionMnistClassNames });
        Assert.Equal("Trouser", dataset.ClassNames[dataset.LabelOf(0)]);
        var (images, labels) = dataset.Batch([1, 0]);
        using (images)
        using (labels)
        {
            Assert.Equal(new long[] { 2, 3, 2, 3 }, images.shape);
            using var diff = images[.., 0] - images[.., 2];
            Assert.Equal(0f, diff.abs().max().item<float>());
            Assert.Equal(new long[] { 2, 1 }, labels.data<long>().ToArray());
        }
        var missing = Assert.Throws<FileNotFoundException>(() => IdxDataset.OpenSplit(_dir.FullPath, "train", Identity));
        Assert.Contains("train-images-idx3-ubyte", missing.Message);
    }

    [Fact]
    public void ClassFilterRenumbersAndMaxPerClassKeepsTheFirst()
    {
        var (images, labels) = WriteSet([7, 2, 7, 5, 2, 7, 9], gzip: false);
        var dataset = IdxDataset.Open(images, labels, Identity, new IdxOptions { Classes = [7, 2, 5], MaxPerClass = 2 });

        Assert.Equal(["2", "5", "7"], dataset.ClassNames);
        // kept file rows 0 (7), 1 (2), 2 (7), 3 (5), 4 (2); row 5 is a third 7, row 6 a 9
        Assert.Equal([2, 0, 2, 1, 0], Enumerable.Range(0, dataset.Count).Select(dataset.LabelOf));
        Assert.Equal(30, dataset.PixelsOf(3).Data[0]); // row 3's first pixel is 10·3

        var first5 = IdxDataset.Open(images, labels, Identity, new IdxOptions { Classes = [.. Enumerable.Range(0, 5)] });
        Assert.Equal([2, 2], Enumerable.Range(0, first5.Count).Select(first5.LabelOf)); // labels unchanged for 0–4
    }

    [Fact]
    public void MalformedFilesAreErrorsNamingTheFile()
    {
        var (images, labels) = WriteSet([1, 2], gzip: false);

        // swapped files: wrong magic
        var error = Assert.Throws<InvalidDataException>(() => IdxDataset.Open(labels, images, Identity));
        Assert.Contains(labels, error.Message);
        Assert.Contains("2051", error.Message);

        var shortImages = Write("short-images", Idx(IdxFile.ImagesMagic, [2, 2, 3], new byte[11]), gzip: false);
        error = Assert.Throws<InvalidDataException>(() => IdxDataset.Open(shortImages, labels, Identity));
        Assert.Contains(shortImages, error.Message);
        Assert.Contains("truncated", error.Message);

        var longLabels = Write("long-labels", Idx(IdxFile.LabelsMagic, [2], [1, 2, 3]), gzip: false);
        error = Assert.Throws<InvalidDataException>(() => IdxDataset.Open(images, longLabels, Identity));
        Assert.Contains(longLabels, error.Message);
        Assert.Contains("trailing", error.Message);

        var threeLabels = Write("three-labels", Idx(IdxFile.LabelsMagic, [3], [1, 2, 3]), gzip: false);
        error = Assert.Throws<InvalidDataException>(() => IdxDataset.Open(images, threeLabels, Identity));
        Assert.Contains("2 images", error.Message);
        Assert.Contains("3 labels", error.Message);

        var badLabel = Write("bad-label", Idx(IdxFile.LabelsMagic, [2], [1, 10]), gzip: false);
        error = Assert.Throws<InvalidDataException>(() => IdxDataset.Open(images, badLabel, Identity));
        Assert.Contains(badLabel, error.Message);
        Assert.Contains("label 10 at index 1", error.Message);

        var gz = File.ReadAllBytes(Write("x.gz", Idx(IdxFile.LabelsMagic, [2], [1, 2]), gzip: true));
        gz[gz.Length / 2] ^= 0xFF;
        gz[gz.Length - 5] ^= 0xFF; // the CRC
        var corruptGz = _dir.WriteBytes("corrupt.gz", gz);
        error = Assert.Throws<InvalidDataException>(() => IdxDataset.Open(images, corruptGz, Identity));
        Assert.Contains(corruptGz, error.Message);

        Assert.Throws<ArgumentException>(() => IdxDataset.Open(images, labels, Identity, new IdxOptions { Classes = [10] }));
        Assert.Throws<ArgumentOutOfRangeException>(() => IdxDataset.Open(images, labels, Identity, new IdxOptions { MaxPerClass = 0 }));
    }

    [FactIfDirectory(IdxDataset.FashionMnistDirectory, "apt-get install dataset-fashion-mnist")]
    public void DebianFashionMnistHasSixtyAndTenThousandImagesOfTenClasses()
    {
        var options = new IdxOptions { ClassNames = IdxDataset.FashionMnistClassNames };
        var train = IdxDataset.OpenSplit(IdxDataset.FashionMnistDirectory, "train", Identity, options);
        var test = IdxDataset.OpenSplit(IdxDataset.FashionMnistDirectory, "t10k", Identity, options);

        Assert.Equal(60000, train.Count);
        Assert.Equal(10000, test.Count);
        Assert.Equal((28, 28), (train.Height, train.Width));
        // Fashion-MNIST is balanced: 6000 and 1000 per class.
        Assert.All(Enumerable.Range(0, train.Count).GroupBy(train.LabelOf), g => Assert.Equal(6000, g.Count()));
        Assert.All(Enumerable.Range(0, test.Count).GroupBy(test.LabelOf), g => Assert.Equal(1000, g.Count()));
        Assert.Equal(10, Enumerable.Range(0, train.Count).Select(train.LabelOf).Distinct().Count());

        var firstFive = IdxDataset.OpenSplit(IdxDataset.FashionMnistDirectory, "t10k", Identity,
            options with { Classes = [0, 1, 2, 3, 4], MaxPerClass = 100 });
        Assert.Equal(500, firstFive.Count);
        Assert.Equal(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"], firstFive.ClassNames);
        var (images, _) = firstFive.Batch([0, 1]);
        using (images)
        {
            Assert.Equal(new long[] { 2, 1, 28, 28 }, images.shape);
            Assert.InRange(images.max().item<float>(), 0.5f, 1f);
        }
    }

    private static byte[] Idx(int magic, int[] dims, byte[] data)
    {
        var bytes = new byte[4 + 4 * dims.Length + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int d = 0; d < dims.Length; d++)
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), dims[d]);
        data.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    private string Write(string name, byte[] bytes, bool gzip)
    {
        if (!gzip) return _dir.WriteBytes(name, bytes);
        using var buffer = new MemoryStream();
        using (var zip = new GZipStream(buffer, CompressionLevel.Optimal))
            zip.Write(bytes);
        return _dir.WriteBytes(name.EndsWith(".gz", StringComparison.Ordinal) ? name : name + ".gz", buffer.ToArray());
    }
}

/// <summary>A fact that is skipped, with the reason shown, when a data directory is absent on this machine.</summary>
public sealed class FactIfDirectoryAttribute : FactAttribute
{
    public FactIfDirectoryAttribute(string directory, string howToInstall)
    {
        if (!Directory.Exists(directory))
            Skip = $"{directory} is not on this machine ({howToInstall})";
    }
}
