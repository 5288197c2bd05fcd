using TorchSharp;

namespace Jetpack.Model.Data;

/// <summary>
/// CIFAR-10 and CIFAR-100 from the "binary version" files (spec §7.1 Table 7 lists both). Each
/// record is label byte(s) then 3072 pixel bytes: the 1024 red values row by row, then green,
/// then blue (32×32, CHW). CIFAR-10 (<c>data_batch_1..5.bin</c>, <c>test_batch.bin</c>) has one
/// label byte 0–9; CIFAR-100 (<c>train.bin</c>, <c>test.bin</c>) has a coarse (0–19) then a fine
/// (0–99) label byte. All files are held in memory (150 MB for the 50000 training images).
/// </summary>
public sealed class CifarDataset : IImageDataset, Augment.IPixelSource
{
    public const int Side = 32;
    const int PixelBytes = 3 * Side * Side;

    /// <summary>CIFAR-10's labels 0–9 (its batches.meta.txt).</summary>
    public static readonly IReadOnlyList<string> Cifar10ClassNames =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    private readonly byte[][] _files;          // each file's bytes
    private readonly (int File, int Record)[] _where;
    private readonly int[] _labels;
    private readonly int _labelBytes, _labelOffset;

    private CifarDataset(IReadOnlyList<string> paths, int labelBytes, int labelOffset, IReadOnlyList<string> classNames, IImageTransform transform)
    {
        _labelBytes = labelBytes;
        _labelOffset = labelOffset;
        ClassNames = classNames;
        Transform = transform;
        Paths = [.. paths.Select(Path.GetFullPath)];
        int record = labelBytes + PixelBytes;
        _files = new byte[Paths.Count][];
        var where = new List<(int, int)>();
        var labels = new List<int>();
        for (int f = 0; f < Paths.Count; f++)
        {
            var bytes = File.ReadAllBytes(Paths[f]);
            if (bytes.Length == 0 || bytes.Length % record != 0)
                throw new InvalidDataException($"{Paths[f]}: {bytes.Length} bytes is not a whole number of {record}-byte records " +
                    $"({labelBytes} label byte(s) + {PixelBytes} pixels); is it the right CIFAR variant?");
            for (int r = 0; r < bytes.Length / record; r++)
            {
                int label = bytes[r * record + labelOffset];
                if (label >= classNames.Count)
                    throw new InvalidDataException($"{Paths[f]}: record {r} has label {label}, outside 0..{classNames.Count - 1}");
                where.Add((f, r));
                labels.Add(label);
            }
            _files[f] = bytes;
        }
        _where = [.. where];
        _labels = [.. labels];
    }

    /// <summary>CIFAR-10 from explicit files (one label byte per record).</summary>
    public static CifarDataset OpenCifar10(IReadOnlyList<string> files, IImageTransform transform) =>
        Open(files, 1, 0, Cifar10ClassNames, transform);

    /// <summary>
    /// CIFAR-100 from explicit files (coarse then fine label byte). Labels are the 100 fine classes,
    /// or the 20 coarse ones with <paramref name="coarse"/>. Class names come from
    /// <paramref name="classNames"/> or are the label numbers.
    /// </summary>
    public static CifarDataset OpenCifar100(IReadOnlyList<string> files, IImageTransform transform, bool coarse = false,
        IReadOnlyList<string>? classNames = null)
    {
        int n = coarse ? 20 : 100;
        classNames ??= [.. Enumerable.Range(0, n).Select(i => i.ToString())];
        if (classNames.Count != n)
            throw new ArgumentException($"CIFAR-100 {(coarse ? "coarse" : "fine")} labels need {n} names, got {classNames.Count}", nameof(classNames));
        return Open(files, 2, coarse ? 0 : 1, classNames, transform);
    }

    /// <summary>
    /// The split of the extracted archive in <paramref name="directory"/> (<c>cifar-10-batches-bin</c>
    /// or <c>cifar-100-binary</c>): CIFAR-10 train is data_batch_1..5.bin, test test_batch.bin;
    /// CIFAR-100 train.bin / test.bin, with names from fine/coarse_label_names.txt when present.
    /// </summary>
    public static CifarDataset OpenSplit(string directory, bool cifar100, bool train, IImageTransform transform, bool coarse = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!cifar100)
            return OpenCifar10(train ? [.. Enumerable.Range(1, 5).Select(i => Path.Combine(directory, $"data_batch_{i}.bin"))]
                : [Path.Combine(directory, "test_batch.bin")], transform);
        var namesFile = Path.Combine(directory, coarse ? "coarse_label_names.txt" : "fine_label_names.txt");
        IReadOnlyList<string>? names = File.Exists(namesFile)
            ? [.. File.ReadAllLines(namesFile).Select(l => l.Trim()).Where(l => l.Length > 0)] : null;
        return OpenCifar100([Path.Combine(directory, train ? "train.bin" : "test.bin")], transform, coarse, names);
    }

    private static CifarDataset Open(IReadOnlyList<string> files, int labelBytes, int labelOffset, IReadOnlyList<string> names, IImageTransform transform)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(transform);
        if (files.Count == 0) throw new ArgumentException("CIFAR needs at least one file", nameof(files));
        foreach (var f in files)
            if (!File.Exists(f)) throw new FileNotFoundException($"CIFAR file {Path.GetFullPath(f)} does not exist", f);
        return new CifarDataset(files, labelBytes, labelOffset, names, transform);
    }

    public IReadOnlyList<string> Paths { get; }
    public IImageTransform Transform { get; }
    public int Count => _labels.Length;
    public int NumClasses => ClassNames.Count;
    public IReadOnlyList<string> ClassNames { get; }

    public int LabelOf(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        return _labels[index];
    }

    /// <summary>The raw RGB image of <paramref name="index"/>, converted from the file's planes (CHW) to interleaved HWC.</summary>
    public ImagePixels PixelsOf(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        var (file, record) = _where[index];
        var planes = _files[file].AsSpan(record * (_labelBytes + PixelBytes) + _labelBytes, PixelBytes);
        const int plane = Side * Side;
        var hwc = new byte[PixelBytes];
        for (int p = 0; p < plane; p++)
        {
            hwc[3 * p] = planes[p];
            hwc[3 * p + 1] = planes[plane + p];
            hwc[3 * p + 2] = planes[2 * plane + p];
        }
        return new ImagePixels(hwc, Side, Side, 3);
    }

    /// <summary>The transformed image; a 1-channel transform gets PIL's luma.</summary>
    public (torch.Tensor Image, int Label) Get(int index) =>
        (Transform.Apply(PixelsOf(index).WithChannels(Transform.Channels)), _labels[index]);

    public (torch.Tensor Images, torch.Tensor Labels) Batch(IReadOnlyList<int> indices) => DatasetBatching.Stack(this, indices);
}
