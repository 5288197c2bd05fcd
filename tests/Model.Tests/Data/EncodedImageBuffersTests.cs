using Jetpack.Model.Data;
using Jetpack.Model.Data.Fixtures;

namespace Jetpack.Model.Tests.Data;

/// <summary>
/// The decode path's managed allocations: the encoded bytes go straight into native memory and the
/// RGBA scratch is pooled, so per image the managed heap sees its output pixels and a few small objects —
/// not a copy of the file (File.ReadAllBytes) and 4 bytes a pixel of scratch, as before.
/// </summary>
public sealed class EncodedImageBuffersTests : IDisposable
{
    const long SmallObjectsPerImage = 8 << 10;      // wrappers, the path string, the file handle: well under 8 KB

    readonly string dir = Directory.CreateTempSubdirectory("jetpack-decode-buffers-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void DecodingAnImageAllocatesOnlyItsOutputPixelsOnTheManagedHeap()
    {
        var tree = ImageTreeGenerator.Write(Path.Combine(dir, "tree"), classes: 2, trainPerClass: 5, valPerClass: 1, maxSide: 640);
        var files = Directory.EnumerateFiles(Path.Combine(tree.Root, "train"), "*", SearchOption.AllDirectories)
                             .Where(f => !tree.BadFiles.Contains(f)).Order(StringComparer.Ordinal).ToList();
        Assert.True(files.Count >= 8, $"{files.Count} decodable files");
        long Decode(List<long>? outputs)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            foreach (var f in files)
            {
                using var image = EncodedImage.Read(f);
                var pixels = image.Decode(3);
                outputs?.Add(pixels.Data.Length);
            }
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Decode(null);                                                            // warm-up: JIT, the pool's buckets
        var outputs = new List<long>();
        long allocated = Decode(outputs) - outputs.Count * 8L;                   // the list's own growth is not the decoder's
        long bound = outputs.Sum() + SmallObjectsPerImage * files.Count;
        Assert.True(allocated <= bound, $"{allocated:N0} managed bytes for {files.Count} images, bound {bound:N0} (their pixels {outputs.Sum():N0} + 8 KB each)");
        // what the old path added per image (the file's bytes + RGBA scratch) is far above the slack: the bound can fail
        long oldExtra = files.Sum(f => new FileInfo(f).Length) + outputs.Sum() / 3 * 4;
        Assert.True(oldExtra > 4 * SmallObjectsPerImage * files.Count, $"old extra {oldExtra:N0}");
    }

    [Fact]
    public void AnImageAboveTheLimitIsRefusedByNameBeforeItIsRead()
    {
        string big = Path.Combine(dir, "big.JPEG");
        using (var f = File.Create(big)) f.SetLength(EncodedImage.MaxBytes + 1);  // sparse: nothing is written
        var e = Assert.Throws<InvalidDataException>(() => EncodedImage.Read(big));
        Assert.Equal(big, UndecodableImage.PathOf(e));
        Assert.Contains("limit", e.Message);
    }
}
