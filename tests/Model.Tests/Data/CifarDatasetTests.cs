using Jetpack.Model.Data;
using Jetpack.Model.Tests.Checkpoints;

namespace Jetpack.Model.Tests.Data;

/// <summary>Tiny CIFAR binary files written here: record i has pixel value (channel c, position p) = (i + 7c + p) mod 256.</summary>
public sealed class CifarDatasetTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly EvalTransform Identity = EvalTransform.ScaleNormalize([0f, 0f, 0f], [1f, 1f, 1f]);

    private static byte Pixel(int record, int c, int p) => (byte)((record + 7 * c + p) % 256);

    private string Write(string name, params byte[][] labels)
    {
        var bytes = new List<byte>();
        for (int i = 0; i < labels.Length; i++)
        {
            bytes.AddRange(labels[i]);
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 1024; p++) bytes.Add(Pixel(i, c, p));
        }
        return _dir.WriteBytes(name, [.. bytes]);
    }

    [Fact]
    public void Cifar10SplitsReadLabelsAndChwPlanes()
    {
        for (int b = 1; b <= 5; b++) Write($"data_batch_{b}.bin", [(byte)b], [9]);
        Write("test_batch.bin", [4]);
        var train = CifarDataset.OpenSplit(_dir.FullPath, cifar100: false, train: true, Identity);
        Assert.Equal(10, train.Count);
        Assert.Equal([1, 9, 2, 9, 3, 9, 4, 9, 5, 9], Enumerable.Range(0, 10).Select(train.LabelOf));
        Assert.Equal("truck", train.ClassNames[train.LabelOf(1)]);

        var (image, label) = train.Get(3);               // file 2, record 1
        using (image)
        {
            Assert.Equal(9, label);
            Assert.Equal(new long[] { 3, 32, 32 }, image.shape);
            Assert.Equal(Pixel(1, 2, 33) / 255f, image[2, 1, 1].item<float>(), 6);   // blue, row 1, column 1
            Assert.Equal(Pixel(1, 0, 31) / 255f, image[0, 0, 31].item<float>(), 6);
        }
        var hwc = train.PixelsOf(0);
        Assert.Equal([Pixel(0, 0, 5), Pixel(0, 1, 5), Pixel(0, 2, 5)], hwc.Data.AsSpan(15, 3).ToArray());

        var test = CifarDataset.OpenSplit(_dir.FullPath, cifar100: false, train: false, Identity);
        var (images, labels) = test.Batch([0, 0]);
        using (images) using (labels)
        {
            Assert.Equal(new long[] { 2, 3, 32, 32 }, images.shape);
            Assert.Equal(new long[] { 4, 4 }, labels.data<long>().ToArray());
        }
    }

    [Fact]
    public void Cifar100ReadsFineOrCoarseLabelsAndNames()
    {
        Write("train.bin", [3, 77], [19, 99]);
        File.WriteAllLines(_dir.File("fine_label_names.txt"), Enumerable.Range(0, 100).Select(i => $"fine{i}"));
        var fine = CifarDataset.OpenSplit(_dir.FullPath, cifar100: true, train: true, Identity);
        Assert.Equal(100, fine.NumClasses);
        Assert.Equal([77, 99], Enumerable.Range(0, 2).Select(fine.LabelOf));
        Assert.Equal("fine77", fine.ClassNames[77]);
        var coarse = CifarDataset.OpenSplit(_dir.FullPath, cifar100: true, train: true, Identity, coarse: true);
        Assert.Equal([3, 19], Enumerable.Range(0, 2).Select(coarse.LabelOf));
        Assert.Equal("19", coarse.ClassNames[19]);
        var (image, _) = fine.Get(1);
        using (image) Assert.Equal(Pixel(1, 1, 0) / 255f, image[1, 0, 0].item<float>(), 6);
    }

    [Fact]
    public void ErrorsNameTheFile()
    {
        var truncated = _dir.WriteBytes("test_batch.bin", new byte[3072]);
        var e = Assert.Throws<InvalidDataException>(() => CifarDataset.OpenCifar10([truncated], Identity));
        Assert.Contains(truncated, e.Message);

        var badLabel = Write("bad.bin", [0], [10]);
        e = Assert.Throws<InvalidDataException>(() => CifarDataset.OpenCifar10([badLabel], Identity));
        Assert.Contains(badLabel, e.Message);
        Assert.Contains("record 1 has label 10", e.Message);

        var c100 = Write("c100.bin", [20, 5]);          // coarse 20 is out of range only for coarse labels
        Assert.Equal(5, CifarDataset.OpenCifar100([c100], Identity).LabelOf(0));
        e = Assert.Throws<InvalidDataException>(() => CifarDataset.OpenCifar100([c100], Identity, coarse: true));
        Assert.Contains(c100, e.Message);

        var missing = _dir.File("nope.bin");
        Assert.Contains(missing, Assert.Throws<FileNotFoundException>(() => CifarDataset.OpenCifar10([missing], Identity)).Message);
    }
}
