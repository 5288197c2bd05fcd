using TorchSharp;

namespace Jetpack.Model.Data;

/// <summary>A dataset whose samples are encoded image files (a class-folder tree, tar shards): read bytes, decode as the transform needs.</summary>
public interface IEncodedSource
{
    int Count { get; }
    int LabelOf(int index);
    /// <summary>The sample's encoded image with its header read. The caller disposes it.</summary>
    EncodedImage Open(int index);
    /// <summary>Undecodable samples met so far; reading substitutes the next index for them.</summary>
    BadFiles BadFiles { get; }
}

/// <summary>
/// torchvision's ImageFolder: one sub-folder of <c>root</c> per class, labels by the ordinal sort
/// of the folder names. The order of samples matters (spec §5.2 profiles <c>Subset(ImageFolder,
/// arange(38400))</c>, the first ~30 classes), so it follows torchvision's make_dataset: classes in
/// label order, each class folder walked recursively, directories sorted by path and files by name
/// (ordinal), keeping files with an image extension (<see cref="ImageDecoder.Extensions"/>, any case).
/// The listing is an <see cref="ImageFolderIndex"/> (built now, or read from its file).
/// Images are decoded on each <see cref="Get"/>; nothing is cached. An undecodable file is reported to
/// <see cref="BadFiles"/> and the next index's image is served instead.
/// </summary>
public sealed class ImageFolderDataset : IImageDataset, Augment.IPixelSource, IEncodedSource
{
    private readonly ImageFolderIndex _index;
    private readonly string[] _classNames;

    /// <param name="root">The folder holding one sub-folder per class.</param>
    /// <param name="transform">Applied to every decoded image.</param>
    public ImageFolderDataset(string root, IImageTransform transform)
        : this(ImageFolderIndex.Build(root), transform, null)
    {
    }

    /// <param name="badFiles">where undecodable files are counted; null: a log of its own with the default fraction</param>
    public ImageFolderDataset(ImageFolderIndex index, IImageTransform transform, BadFiles? badFiles)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(transform);
        _index = index;
        _classNames = [.. index.Classes];
        Transform = transform;
        BadFiles = badFiles ?? new BadFiles(index.Images.Count);
    }

    /// <summary>The full path of the root folder.</summary>
    public string Root => _index.Root;

    public IImageTransform Transform { get; }

    /// <summary>Threads decoding one batch of <see cref="Batch"/> with a sized eval transform (data.workers; default 1).</summary>
    public int Workers { get; init; } = 1;

    public BadFiles BadFiles { get; }

    public int Count => _index.Images.Count;

    public int NumClasses => _classNames.Length;

    public IReadOnlyList<string> ClassNames => _classNames;

    /// <summary>The full path of sample <paramref name="index"/>.</summary>
    public string PathOf(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        return _index.PathOf(index);
    }

    public int LabelOf(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        return _index.Images[index].Label;
    }

    public EncodedImage Open(int index) => EncodedImage.Read(PathOf(index));

    /// <summary>Decodes and transforms one image (an undecodable one is substituted, see <see cref="BadFiles"/>).</summary>
    public (torch.Tensor Image, int Label) Get(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        return BadFiles.Substitute(index, j =>
        {
            using var image = Open(j);
            return (Transform is EvalTransform eval ? eval.Apply(image) : Transform.Apply(image.Decode(Transform.Channels)), LabelOf(j));
        });
    }

    /// <summary>The decoded pixels with the transform's channel count (an undecodable file throws an <see cref="InvalidDataException"/> (<see cref="UndecodableImage"/>)).</summary>
    public ImagePixels PixelsOf(int index) => ImageDecoder.Decode(PathOf(index), Transform.Channels);

    public (torch.Tensor Images, torch.Tensor Labels) Batch(IReadOnlyList<int> indices) =>
        Transform is EvalTransform { OutputShape: not null } eval ? DatasetBatching.Stack(this, eval, indices, Workers) : DatasetBatching.Stack(this, indices);
}
