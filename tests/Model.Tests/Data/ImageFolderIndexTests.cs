using Jetpack.Model.Data;
using Jetpack.Model.Data.Fixtures;
using Jetpack.Model.Tests.Checkpoints;

namespace Jetpack.Model.Tests.Data;

/// <summary>The class-folder index: built in torchvision order, reused when fresh, rebuilt (with a named reason) when stale or corrupt.</summary>
public sealed class ImageFolderIndexTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void TheIndexIsWrittenOnceReusedAndRebuiltWhenStaleOrCorrupt()
    {
        var tree = ImageTreeGenerator.Write(_dir.File("tree"), classes: 3, trainPerClass: 2, valPerClass: 1, maxSide: 200);
        string root = Path.Combine(tree.Root, "train"), file = _dir.File("index/train.index");
        var log = new List<string>();

        var built = ImageFolderIndex.OpenOrBuild(root, file, log.Add);
        Assert.Empty(log);
        Assert.Equal(tree.Classes, built.Classes);                                   // sorted ordinally: the unicode class last
        Assert.Equal(tree.TrainImages, built.Images.Count);
        Assert.Equal(new FileInfo(tree.Empty).Length, built.Images.Single(i => built.PathOf(built.Images.ToList().IndexOf(i)) == tree.Empty).Size);
        var fresh = new ImageFolderDataset(root, EvalTransform.ImageNet(32));
        Assert.Equal(Enumerable.Range(0, fresh.Count).Select(fresh.PathOf), Enumerable.Range(0, built.Images.Count).Select(built.PathOf));

        var stamp = File.GetLastWriteTimeUtc(file);
        var again = ImageFolderIndex.OpenOrBuild(root, file, log.Add);
        Assert.Empty(log);
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(file));                         // read, not rebuilt
        Assert.Equal(built.Images, again.Images);

        // A new image in a class folder: stale → rebuilt with it.
        File.Copy(tree.Cmyk, Path.Combine(root, tree.Classes[2], "added.JPEG"));
        Directory.SetLastWriteTimeUtc(Path.Combine(root, tree.Classes[2]), DateTime.UtcNow.AddMinutes(1));
        var rebuilt = ImageFolderIndex.OpenOrBuild(root, file, log.Add);
        Assert.Contains(log, l => l.Contains("stale") && l.Contains(tree.Classes[2]));
        Assert.Equal(built.Images.Count + 1, rebuilt.Images.Count);

        // A torn file: corrupt → named, rebuilt.
        log.Clear();
        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(file, bytes[..(bytes.Length / 2)]);
        Assert.Contains(file, Assert.Throws<InvalidDataException>(() => ImageFolderIndex.Read(file)).Message);
        Assert.Equal(rebuilt.Images, ImageFolderIndex.OpenOrBuild(root, file, log.Add).Images);
        Assert.Contains(log, l => l.Contains(file) && l.Contains("checksum"));

        // Another root at the same index path is not served the old listing.
        log.Clear();
        var val = ImageFolderIndex.OpenOrBuild(Path.Combine(tree.Root, "val"), file, log.Add);
        Assert.Equal(tree.ValImages, val.Images.Count);
        Assert.Contains(log, l => l.Contains("rebuilding"));
    }
}
