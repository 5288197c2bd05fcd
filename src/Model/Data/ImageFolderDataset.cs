using System.Collections.Concurrent;
using TorchSharp;

namespace Jetpack.Model.Data;

/// <summary>
/// torchvision's ImageFolder: one sub-folder of <c>root</c> per class, labels by the ordinal sort
/// of the folder names. The order of samples matters (spec §5.2 profiles <c>Subset(ImageFolder,
/// arange(38400))</c>, the first ~30 classes), so it follows torchvision's make_dataset: classes in
/// label order, each class folder walked recursively, directories sorted by path and files by name
/// (ordinal), keeping files with an image extension (<see cref="ImageDecoder.Extensions"/>, any case).
/// Images are decoded on each <see cref="Get"/>; nothing is cached.
/// </summary>
public sealed class ImageFolderDataset : IImageDataset, Augment.IPixelSource
{
    private readonly string[] _classNames;
    private readonly string[] _files;
    private readonly int[] _labels;
    private readonly string[] _skipped;

    /// <param name="root">The folder holding one sub-folder per class.</param>
    /// <param name="transform">Applied to every decoded image.</param>
    /// <param name="skipCorrupt">
    /// Decode every file once now (in parallel; about one full decode per image, ~5 ms for an
    /// ImageNet JPEG) and leave out those that fail with <see cref="InvalidDataException"/>; they
    /// are listed in <see cref="SkippedFiles"/>. When false, a corrupt file throws on <see cref="Get"/>.
    /// </param>
    public ImageFolderDataset(string root, IImageTransform transform, bool skipCorrupt = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        ArgumentNullException.ThrowIfNull(transform);
        Root = Path.GetFullPath(root);
        Transform = transform;
        if (!Directory.Exists(Root))
            throw new DirectoryNotFoundException($"image folder root {Root} does not exist");

        _classNames = Directory.GetDirectories(Root).Select(Path.GetFileName).Select(n => n!)
            .Order(StringComparer.Ordinal).ToArray();
        if (_classNames.Length == 0)
            throw new InvalidDataException($"image folder root {Root} has no class sub-folders");

        var files = new List<string>();
        var labels = new List<int>();
        for (int label = 0; label < _classNames.Length; label++)
        {
            int before = files.Count;
            files.AddRange(ImagesUnder(Path.Combine(Root, _classNames[label])));
            if (files.Count == before)
                throw new InvalidDataException(
                    $"class folder '{_classNames[label]}' under {Root} has no images " +
                    $"(looked for {string.Join(", ", ImageDecoder.Extensions)}, any case)");
            labels.AddRange(Enumerable.Repeat(label, files.Count - before));
        }

        if (skipCorrupt)
        {
            var bad = FindCorrupt(files, transform.Channels);
            _skipped = [.. files.Where(bad.Contains)];
            var keep = Enumerable.Range(0, files.Count).Where(i => !bad.Contains(files[i])).ToArray();
            _files = [.. keep.Select(i => files[i])];
            _labels = [.. keep.Select(i => labels[i])];
        }
        else
        {
            _skipped = [];
            _files = [.. files];
            _labels = [.. labels];
        }
        if (_files.Length == 0)
            throw new InvalidDataException($"image folder root {Root}: all {_skipped.Length} images are corrupt");
    }

    /// <summary>The full path of the root folder.</summary>
    public string Root { get; }

    public IImageTransform Transform { get; }

    public int Count => _files.Length;

    public int NumClasses => _classNames.Length;

    public IReadOnlyList<string> ClassNames => _classNames;

    /// <summary>Files left out by skipCorrupt, in sample order.</summary>
    public IReadOnlyList<string> SkippedFiles => _skipped;

    public int SkippedCount => _skipped.Length;

    /// <summary>The full path of sample <paramref name="index"/>.</summary>
    public string PathOf(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        return _files[index];
    }

    public int LabelOf(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        return _labels[index];
    }

    /// <summary>Decodes and transforms one image; a corrupt file throws <see cref="InvalidDataException"/> naming it.</summary>
    public (torch.Tensor Image, int Label) Get(int index) => (Transform.Apply(PixelsOf(index)), _labels[index]);

    /// <summary>The decoded pixels with the transform's channel count (for seeded train-time augmentation).</summary>
    public ImagePixels PixelsOf(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        return ImageDecoder.Decode(_files[index], Transform.Channels);
    }

    public (torch.Tensor Images, torch.Tensor Labels) Batch(IReadOnlyList<int> indices) => DatasetBatching.Stack(this, indices);

    // os.walk order as torchvision sorts it: every directory under the class folder (itself
    // included) by full path, ordinal; within one, file names ordinal.
    private static IEnumerable<string> ImagesUnder(string classFolder)
    {
        var directories = Directory.GetDirectories(classFolder, "*", SearchOption.AllDirectories)
            .Prepend(classFolder).Order(StringComparer.Ordinal);
        foreach (var directory in directories)
        {
            foreach (var file in Directory.GetFiles(directory).Order(StringComparer.Ordinal))
            {
                if (ImageDecoder.HasImageExtension(file))
                    yield return file;
            }
        }
    }

    private static HashSet<string> FindCorrupt(List<string> files, int channels)
    {
        var bad = new ConcurrentBag<string>();
        Parallel.ForEach(files, file =>
        {
            try
            {
                _ = ImageDecoder.Decode(file, channels);
            }
            catch (InvalidDataException)
            {
                bad.Add(file);
            }
        });
        return [.. bad];
    }
}
