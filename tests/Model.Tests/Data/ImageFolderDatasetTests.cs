using Jetpack.Model.Data;
using Jetpack.Model.Tests.Checkpoints;
using TorchSharp;

namespace Jetpack.Model.Tests.Data;

/// <summary>ImageFolder layout, labels, sample order, decoding and the errors for bad trees and files.</summary>
public sealed class ImageFolderDatasetTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly EvalTransform Small = EvalTransform.Predecessor(8);

    /// <summary>
    /// Folder names sort ordinally ("Zebra" before "apple"); within a class, sorted(os.walk()):
    /// directories by full path ("nested" &lt; "nested-x" &lt; "nested/deeper", as '-' &lt; '/'), files by
    /// name. The order was taken from Python 3.11's os.walk on the same tree.
    /// </summary>
    [Fact]
    public void ClassesAndSamplesFollowTorchvisionOrder()
    {
        var red = TestImages.Png(10, 10, TestImages.Solid(255, 0, 0));
        Write("apple/b.PNG", red);
        Write("apple/a.jpg", TestImages.Jpeg(10, 10, TestImages.Solid(255, 0, 0)));
        Write("apple/notes.txt", [1, 2, 3]);                    // not an image extension: ignored
        Write("apple/nested/c.JpEg", TestImages.Jpeg(10, 10, TestImages.Solid(255, 0, 0)));
        Write("apple/nested-x/d.png", red);
        Write("apple/nested/deeper/e.png", red);
        Write("Zebra/z.png", red);
        Write("mango/m.png", red);

        var dataset = new ImageFolderDataset(_dir.FullPath, Small);

        Assert.Equal(["Zebra", "apple", "mango"], dataset.ClassNames);
        Assert.Equal(3, dataset.NumClasses);
        string[] expected = ["Zebra/z.png", "apple/a.jpg", "apple/b.PNG", "apple/nested/c.JpEg", "apple/nested-x/d.png",
            "apple/nested/deeper/e.png", "mango/m.png"];
        Assert.Equal(expected.Select(f => _dir.File(f)), Enumerable.Range(0, dataset.Count).Select(dataset.PathOf));
        Assert.Equal([0, 1, 1, 1, 1, 1, 2], Enumerable.Range(0, dataset.Count).Select(dataset.LabelOf));
    }

    [Fact]
    public void GetDecodesTransformsAndLabels()
    {
        Write("a/x.png", TestImages.Png(12, 9, TestImages.Solid(255, 0, 51)));
        Write("b/y.png", TestImages.Png(9, 12, TestImages.Solid(0, 255, 0)));
        var dataset = new ImageFolderDataset(_dir.FullPath, Small);

        var (image, label) = dataset.Get(1);
        using (image)
        {
            Assert.Equal(1, label);
            Assert.Equal(new long[] { 3, 8, 8 }, image.shape);
            using var mean = image.mean([1, 2]);
            Assert.Equal(new[] { -1f, 1f, -1f }, mean.data<float>().ToArray());
        }

        var (images, labels) = dataset.Batch([1, 0, 1]);
        using (images)
        using (labels)
        {
            Assert.Equal(new long[] { 3, 3, 8, 8 }, images.shape);
            Assert.Equal(torch.ScalarType.Int64, labels.dtype);
            Assert.Equal(new long[] { 1, 0, 1 }, labels.data<long>().ToArray());
            using var first = images[1, 2, 0, 0];
            Assert.Equal(51 / 255f / 0.5f - 1f, first.item<float>(), 6);
        }
    }

    /// <summary>Grey PNGs become RGB with the value in every channel; RGBA loses alpha without premultiplying.</summary>
    [Fact]
    public void GrayscaleAndAlphaAreConvertedLikePil()
    {
        var gray = Write("g/gray.png", TestImages.GrayPng(4, 3, (x, y) => (byte)(10 * x + 50 * y)));
        var rgba = Write("g/rgba.png", TestImages.Png(2, 1, (x, _) => x == 0 ? ((byte)200, (byte)100, (byte)50, (byte)0) : ((byte)1, (byte)2, (byte)3, (byte)128)));

        var rgb = ImageDecoder.Decode(gray, 3);
        Assert.Equal(3, rgb.Channels);
        Assert.Equal(60, rgb.Data[3 * (1 * 4 + 1)]);      // pixel (1, 1) = 10 + 50, in R, G and B
        Assert.Equal(60, rgb.Data[3 * (1 * 4 + 1) + 2]);
        Assert.Equal((byte[])[.. Enumerable.Range(0, 12).Select(i => (byte)(10 * (i % 4) + 50 * (i / 4)))], ImageDecoder.Decode(gray, 1).Data);

        Assert.Equal(new byte[] { 200, 100, 50, 1, 2, 3 }, ImageDecoder.Decode(rgba, 3).Data);
        // PIL's L = (19595 R + 38470 G + 7471 B + 2^15) >> 16
        Assert.Equal(new byte[] { (byte)((200 * 19595 + 100 * 38470 + 50 * 7471 + 32768) >> 16), 2 }, ImageDecoder.Decode(rgba, 1).Data);
    }

    [Fact]
    public void OneChannelTransformGetsLuma()
    {
        Write("a/x.png", TestImages.Png(8, 8, TestImages.Solid(90, 90, 90)));
        var dataset = new ImageFolderDataset(_dir.FullPath, new EvalTransform(8, 1.0, [0f], [1f]));
        var (image, _) = dataset.Get(0);
        using (image)
        {
            Assert.Equal(new long[] { 1, 8, 8 }, image.shape);
            Assert.All(image.data<float>().ToArray(), v => Assert.Equal(90 / 255f, v));
        }
    }

    [Fact]
    public void CorruptFileThrowsNamingTheFile()
    {
        Write("a/good.png", TestImages.Png(8, 8, TestImages.Solid(1, 2, 3)));
        var garbage = Write("a/garbage.png", [.. Enumerable.Range(0, 100).Select(i => (byte)i)]);
        var png = TestImages.Png(40, 40, (x, y) => ((byte)x, (byte)y, 7, 255));
        var truncated = Write("b/truncated.png", png[..(png.Length / 2)]);
        var dataset = new ImageFolderDataset(_dir.FullPath, Small);

        // with the default data.max_bad_fraction (0.001 of 3 files: none allowed) the first bad file fails, naming it
        var error = Assert.Throws<TooManyBadFilesException>(() => dataset.Get(0)); // garbage.png sorts first
        Assert.Contains(garbage, error.Message);
        error = Assert.Throws<TooManyBadFilesException>(() => dataset.Get(2));
        Assert.Contains(truncated, error.Message);
        Assert.Contains("truncated", error.Message);
        using var _ = dataset.Get(1).Image;
    }

    [Fact]
    public void UndecodableFilesAreSubstitutedCountedAndTooManyFailNamingThem()
    {
        Write("a/1.png", TestImages.Png(8, 8, TestImages.Solid(1, 2, 3)));
        var bad = Write("a/2.jpg", [0xFF, 0xD8, 0xFF, 0xE0, 0, 0]);
        Write("b/3.png", TestImages.Png(8, 8, TestImages.Solid(1, 2, 3)));
        var bad2 = Write("b/4.png", [1, 2, 3]);
        var index = ImageFolderIndex.Build(_dir.FullPath);
        var logged = new List<string>();

        var dataset = new ImageFolderDataset(index, Small, new BadFiles(index.Images.Count, maxFraction: 0.5, logged.Add));
        var (images, labels) = dataset.Batch([0, 1, 2, 3]);
        images.Dispose();
        using (labels) Assert.Equal(new long[] { 0, 1, 1, 0 }, labels.data<long>().ToArray());   // 1 → 2 (label 1), 3 → 0 (wraps)
        Assert.Equal(2, dataset.BadFiles.Count);
        Assert.Equal([bad, bad2], dataset.BadFiles.Paths);
        Assert.Equal(2, logged.Count);
        Assert.Contains(logged, l => l.Contains(bad2));

        var strict = new ImageFolderDataset(index, Small, new BadFiles(index.Images.Count, maxFraction: 0.25));
        using (strict.Get(1).Image) { }                                                             // one of four: allowed
        var error = Assert.Throws<TooManyBadFilesException>(() => strict.Get(3));
        Assert.Contains(bad, error.Message);
        Assert.Contains(bad2, error.Message);
        Assert.Contains("data.max_bad_fraction", error.Message);
    }

    [Fact]
    public void BadTreesAreErrorsNamingTheRoot()
    {
        var missing = Path.Combine(_dir.FullPath, "nope");
        Assert.Contains(missing, Assert.Throws<DirectoryNotFoundException>(() => new ImageFolderDataset(missing, Small)).Message);

        var error = Assert.Throws<InvalidDataException>(() => new ImageFolderDataset(_dir.FullPath, Small));
        Assert.Contains(_dir.FullPath, error.Message);
        Assert.Contains("no class sub-folders", error.Message);

        Write("full/x.png", TestImages.Png(8, 8, TestImages.Solid(1, 2, 3)));
        Write("empty/readme.txt", [1]);
        error = Assert.Throws<InvalidDataException>(() => new ImageFolderDataset(_dir.FullPath, Small));
        Assert.Contains("'empty'", error.Message);
        Assert.Contains(_dir.FullPath, error.Message);
    }

    [Fact]
    public void BatchOfDifferentSizesWithoutResizeNamesTheIndices()
    {
        Write("a/x.png", TestImages.Png(8, 8, TestImages.Solid(1, 2, 3)));
        Write("a/y.png", TestImages.Png(9, 8, TestImages.Solid(1, 2, 3)));
        var dataset = new ImageFolderDataset(_dir.FullPath, EvalTransform.ScaleNormalize([0f, 0f, 0f], [1f, 1f, 1f]));
        var error = Assert.Throws<InvalidOperationException>(() => dataset.Batch([0, 1]));
        Assert.Contains("index 1 has shape [3, 8, 9]", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => dataset.Get(2));
    }

    private string Write(string relative, byte[] bytes)
    {
        var path = _dir.File(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
