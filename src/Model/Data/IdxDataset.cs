using TorchSharp;

namespace Jetpack.Model.Data;

/// <summary>
/// MNIST-style data from an IDX image file ([n, rows, cols] bytes) and an IDX label file ([n]),
/// raw or gzip-compressed; see <see cref="IdxFile"/>. Debian's <c>dataset-fashion-mnist</c>
/// installs Fashion-MNIST as <c>{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz</c> in
/// <see cref="FashionMnistDirectory"/>. Both files are held in memory (47 MB for 60000 images).
/// </summary>
public sealed class IdxDataset : IImageDataset, Augment.IPixelSource
{
    /// <summary>Where Debian's dataset-fashion-mnist puts the files.</summary>
    public const string FashionMnistDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>Fashion-MNIST's labels 0–9 (its README).</summary>
    public static readonly IReadOnlyList<string> FashionMnistClassNames =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>MNIST's labels: the digits.</summary>
    public static readonly IReadOnlyList<string> DigitClassNames = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    private readonly byte[] _pixels;    // [n_file, rows, cols]
    private readonly int[] _rows;       // file row of each kept sample
    private readonly int[] _labels;     // label of each kept sample, after the class filter's renumbering
    private readonly string[] _classNames;

    private IdxDataset(string imagesPath, string labelsPath, IImageTransform transform, IdxOptions options)
    {
        ImagesPath = Path.GetFullPath(imagesPath);
        LabelsPath = Path.GetFullPath(labelsPath);
        Transform = transform;
        var allNames = options.ClassNames ?? DigitClassNames;

        var (imageDims, pixels) = IdxFile.Read(ImagesPath, IdxFile.ImagesMagic);
        var (labelDims, fileLabels) = IdxFile.Read(LabelsPath, IdxFile.LabelsMagic);
        if (imageDims[0] != labelDims[0])
            throw new InvalidDataException($"{ImagesPath} holds {imageDims[0]} images but {LabelsPath} holds {labelDims[0]} labels");
        if (imageDims[1] < 1 || imageDims[2] < 1)
            throw new InvalidDataException($"{ImagesPath}: image size {imageDims[1]}x{imageDims[2]}");
        for (int i = 0; i < fileLabels.Length; i++)
        {
            if (fileLabels[i] >= allNames.Count)
                throw new InvalidDataException($"{LabelsPath}: label {fileLabels[i]} at index {i} is outside 0..{allNames.Count - 1}");
        }

        // The filter keeps labels contiguous (a classifier head needs 0..k-1): kept class j becomes
        // label rank(j) among the kept ones, so keeping 0–4 leaves labels unchanged.
        int[] kept = options.Classes is null ? [.. Enumerable.Range(0, allNames.Count)] : [.. options.Classes.Distinct().Order()];
        if (kept.Length == 0 || kept[0] < 0 || kept[^1] >= allNames.Count)
            throw new ArgumentException($"class filter [{string.Join(", ", kept)}] must name classes in 0..{allNames.Count - 1}", nameof(options));
        var newLabel = Enumerable.Repeat(-1, allNames.Count).ToArray();
        for (int j = 0; j < kept.Length; j++)
            newLabel[kept[j]] = j;

        var perClass = new int[kept.Length];
        var rows = new List<int>();
        var labels = new List<int>();
        for (int i = 0; i < fileLabels.Length; i++)
        {
            int label = newLabel[fileLabels[i]];
            if (label < 0 || perClass[label] >= (options.MaxPerClass ?? int.MaxValue)) continue;
            perClass[label]++;
            rows.Add(i);
            labels.Add(label);
        }

        _pixels = pixels;
        Height = imageDims[1];
        Width = imageDims[2];
        _rows = [.. rows];
        _labels = [.. labels];
        _classNames = [.. kept.Select(j => allNames[j])];
    }

    /// <summary>Reads an image file and a label file; see <see cref="IdxOptions"/> for filtering.</summary>
    public static IdxDataset Open(string imagesPath, string labelsPath, IImageTransform transform, IdxOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(imagesPath);
        ArgumentException.ThrowIfNullOrEmpty(labelsPath);
        ArgumentNullException.ThrowIfNull(transform);
        options ??= new IdxOptions();
        options.Validate();
        return new IdxDataset(imagesPath, labelsPath, transform, options);
    }

    /// <summary>
    /// Opens split <paramref name="split"/> ("train" or "t10k") of <paramref name="directory"/>:
    /// <c>{split}-images-idx3-ubyte</c> and <c>{split}-labels-idx1-ubyte</c>, each raw or with .gz.
    /// </summary>
    public static IdxDataset OpenSplit(string directory, string split, IImageTransform transform, IdxOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(split);
        return Open(Find(directory, $"{split}-images-idx3-ubyte"), Find(directory, $"{split}-labels-idx1-ubyte"), transform, options);
    }

    public string ImagesPath { get; }
    public string LabelsPath { get; }
    public IImageTransform Transform { get; }
    public int Height { get; }
    public int Width { get; }
    public int Count => _rows.Length;
    public int NumClasses => _classNames.Length;
    public IReadOnlyList<string> ClassNames => _classNames;

    public int LabelOf(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        return _labels[index];
    }

    /// <summary>The raw 8-bit image (1 channel) of sample <paramref name="index"/>.</summary>
    public ImagePixels PixelsOf(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        int size = Height * Width;
        return new ImagePixels(_pixels.AsSpan(_rows[index] * size, size).ToArray(), Width, Height, 1);
    }

    /// <summary>The transformed image; a 3-channel transform gets the grey value in R, G and B (PIL's convert("RGB")).</summary>
    public (torch.Tensor Image, int Label) Get(int index) =>
        (Transform.Apply(PixelsOf(index).WithChannels(Transform.Channels)), _labels[index]);

    public (torch.Tensor Images, torch.Tensor Labels) Batch(IReadOnlyList<int> indices) => DatasetBatching.Stack(this, indices);

    private static string Find(string directory, string name)
    {
        foreach (var candidate in new[] { name, name + ".gz" })
        {
            var path = Path.Combine(directory, candidate);
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException($"neither {name} nor {name}.gz is in {Path.GetFullPath(directory)}", Path.Combine(directory, name));
    }
}

/// <summary>Which samples of an IDX file an <see cref="IdxDataset"/> keeps.</summary>
public sealed record IdxOptions
{
    /// <summary>Names of the file's labels 0..k-1; labels outside are an error. Default: the digits 0–9.</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>Keep only these classes (file labels), renumbered 0.. in ascending order. Null: all.</summary>
    public IReadOnlyCollection<int>? Classes { get; init; }

    /// <summary>Keep at most this many samples per class, the first ones in file order. Null: all.</summary>
    public int? MaxPerClass { get; init; }

    internal void Validate()
    {
        if (MaxPerClass is < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxPerClass), $"MaxPerClass must be positive, got {MaxPerClass}");
        if (ClassNames is { Count: 0 or > 256 })
            throw new ArgumentException($"ClassNames must have 1..256 entries (labels are bytes), got {ClassNames.Count}", nameof(ClassNames));
    }
}
