using System.Formats.Tar;
using System.Globalization;
using System.Text;
using Microsoft.Win32.SafeHandles;
using TorchSharp;

namespace Jetpack.Model.Data;

/// <summary>
/// A split stored as tar shards in the WebDataset convention: <c>&lt;split&gt;-000000.tar</c>, … under
/// root, each sample two members <c>key.jpg</c> (the encoded image; decoded by its magic bytes, so a
/// PNG may sit under .jpg) and <c>key.cls</c> (the label, decimal ASCII), plus <c>classes.txt</c> (class
/// names by label, one a line) beside them. Opening scans the tar headers only (a seek per member, no
/// image bytes read) into (shard, offset, length, label); samples are then read by position with one
/// open handle per shard, so a rank reads only the samples of its part and a resume skips without reading.
/// Sizes are checked before anything is allocated. Undecodable images are substituted and counted (<see cref="BadFiles"/>).
/// Training with shards reads each rank's own shards through a <see cref="ShardStream"/> (<see cref="StreamFor"/>);
/// <see cref="ReadsByShard"/> counts the images read from each shard, so a rank's reads can be checked.
/// </summary>
public sealed class ShardDataset : IImageDataset, Augment.IPixelSource, IEncodedSource, IDisposable
{
    /// <summary>The largest image member read (a bigger one is a corrupt or hostile shard).</summary>
    public const long MaxImageBytes = EncodedImage.MaxBytes;
    public const int MaxClasses = ImageFolderIndex.MaxClasses;
    public static readonly IReadOnlyList<string> ImageExtensions = [".jpg", ".jpeg", ".png", ".webp"];

    private readonly string[] _shards;
    private readonly SafeFileHandle[] _handles;
    private readonly (int Shard, long Offset, int Length, int Label, string Key)[] _samples;
    private readonly string[] _classNames;
    private readonly int[] _shardSizes;
    private readonly long[] _reads;

    public ShardDataset(string root, string split, IImageTransform transform, double maxBadFraction = BadFiles.DefaultMaxFraction, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(transform);
        Root = Path.GetFullPath(root);
        Split = split;
        Transform = transform;
        _shards = ShardFiles(Root, split);
        if (_shards.Length == 0) throw new FileNotFoundException($"no shards {split}-*.tar under {Root}");
        _classNames = ReadClasses(Path.Combine(Root, "classes.txt"));
        var samples = new List<(int, long, int, int, string)>();
        for (int s = 0; s < _shards.Length; s++) Scan(s, samples);
        if (samples.Count == 0) throw new InvalidDataException($"shards {split}-*.tar under {Root} hold no samples");
        _samples = [.. samples];
        _handles = [.. _shards.Select(f => File.OpenHandle(f, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess))];
        BadFiles = new BadFiles(_samples.Length, maxBadFraction, log);
        _shardSizes = new int[_shards.Length];
        foreach (var sample in _samples) _shardSizes[sample.Shard]++;
        _reads = new long[_shards.Length];
    }

    /// <summary>The shuffle buffer of a rank's training stream (data.shuffle_buffer), in samples.</summary>
    public int ShuffleBuffer { get; init; } = ShardStream.DefaultBufferSize;
    /// <summary>Samples per shard, in shard order (sample indices run shard by shard).</summary>
    public IReadOnlyList<int> ShardSizes => _shardSizes;
    /// <summary>Images read from each shard so far (<see cref="Open"/> calls, substitutes of bad files included).</summary>
    public long[] ReadsByShard()
    {
        var reads = new long[_reads.Length];
        for (int s = 0; s < reads.Length; s++) reads[s] = Interlocked.Read(ref _reads[s]);
        return reads;
    }

    /// <summary>Shards at least one image has been read from.</summary>
    public int ShardsRead => ReadsByShard().Count(r => r > 0);

    /// <summary>Rank <paramref name="rank"/>'s stream over its own shards (shard i → rank i mod W) with this dataset's shuffle buffer.</summary>
    public ShardStream StreamFor(int worldSize, int rank, int perStep, ulong seed) =>
        new(_shardSizes, worldSize, rank, perStep, seed, ShuffleBuffer, $"{Path.Combine(Root, Split + "-*.tar")}");

    /// <summary>The shards under a training dataset (itself, or the source of its augmentation); null for other datasets.</summary>
    public static ShardDataset? Of(IImageDataset dataset) => dataset switch
    {
        ShardDataset shards => shards,
        Augment.AugmentedDataset { Source: ShardDataset shards } => shards,
        _ => null,
    };

    public string Root { get; }
    public string Split { get; }
    public IImageTransform Transform { get; }

    /// <summary>Threads decoding one batch of <see cref="Batch"/> with a sized eval transform (data.workers; default 1).</summary>
    public int Workers { get; init; } = 1;
    public BadFiles BadFiles { get; }
    public IReadOnlyList<string> Shards => _shards;
    public int Count => _samples.Length;
    public int NumClasses => _classNames.Length;
    public IReadOnlyList<string> ClassNames => _classNames;

    /// <summary>The shards of a split, sorted: <c>split-NNNNNN.tar</c>.</summary>
    public static string[] ShardFiles(string root, string split) =>
        Directory.Exists(root) ? [.. Directory.GetFiles(root, $"{split}-*.tar").Order(StringComparer.Ordinal)] : [];

    /// <summary>Where sample <paramref name="index"/> lives, for errors and logs: shard path and member key.</summary>
    public string NameOf(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        return $"{_shards[_samples[index].Shard]}:{_samples[index].Key}";
    }

    public int LabelOf(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        return _samples[index].Label;
    }

    public EncodedImage Open(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        var (shard, offset, length, _, _) = _samples[index];
        Interlocked.Increment(ref _reads[shard]);
        return EncodedImage.Read(_handles[shard], offset, length, NameOf(index));     // straight into native memory, no managed copy
    }

    public ImagePixels PixelsOf(int index)
    {
        using var image = Open(index);
        return image.Decode(Transform.Channels);
    }

    public (torch.Tensor Image, int Label) Get(int index)
    {
        DatasetBatching.CheckIndex(index, Count);
        return BadFiles.Substitute(index, j =>
        {
            using var image = Open(j);
            return (Transform is EvalTransform eval ? eval.Apply(image) : Transform.Apply(image.Decode(Transform.Channels)), LabelOf(j));
        });
    }

    public (torch.Tensor Images, torch.Tensor Labels) Batch(IReadOnlyList<int> indices) =>
        Transform is EvalTransform { OutputShape: not null } eval ? DatasetBatching.Stack(this, eval, indices, Workers) : DatasetBatching.Stack(this, indices);

    // One pass over the tar headers: TarReader on a seekable stream leaves the data unread (DataOffset is
    // the member's first data byte) and seeks over it to the next header.
    private void Scan(int shard, List<(int, long, int, int, string)> samples)
    {
        string path = _shards[shard];
        using var stream = File.OpenRead(path);
        using var reader = new TarReader(stream);
        var images = new Dictionary<string, (long Offset, int Length)>(StringComparer.Ordinal);
        var labels = new Dictionary<string, int>(StringComparer.Ordinal);
        var order = new List<string>();
        try
        {
            while (reader.GetNextEntry(copyData: false) is { } entry)
            {
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
                string name = entry.Name, ext = Path.GetExtension(name).ToLowerInvariant(), key = name[..^ext.Length];
                if (entry.Length < 0) throw Corrupt(path, name, $"size {entry.Length}");
                if (ext == ".cls")
                {
                    if (entry.Length > 32) throw Corrupt(path, name, $"a label of {entry.Length} bytes");
                    var text = new byte[entry.Length];
                    entry.DataStream!.ReadExactly(text);
                    if (!int.TryParse(Encoding.ASCII.GetString(text).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int label) || label >= _classNames.Length)
                        throw Corrupt(path, name, $"label '{Encoding.ASCII.GetString(text).Trim()}' is not a class index below {_classNames.Length} (classes.txt)");
                    labels[key] = label;
                }
                else if (ImageExtensions.Contains(ext))
                {
                    if (entry.Length > MaxImageBytes) throw Corrupt(path, name, $"an image of {entry.Length:N0} bytes (limit {MaxImageBytes:N0})");
                    images[key] = (entry.DataOffset, (int)entry.Length);          // the first data byte in the archive (seekable stream)
                    order.Add(key);
                }
            }
        }
        catch (Exception e) when (e is FormatException or EndOfStreamException or InvalidOperationException)
        {
            throw new InvalidDataException($"shard {path}: not a readable tar ({e.Message})", e);
        }
        foreach (var key in order)
        {
            if (!labels.TryGetValue(key, out int label)) throw Corrupt(path, key + ".cls", "is missing (every image needs its label)");
            var (offset, length) = images[key];
            samples.Add((shard, offset, length, label, key));
        }
    }

    private static string[] ReadClasses(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: the class names (one a line, by label) are missing", path);
        if (new FileInfo(path).Length > 64L << 20) throw new InvalidDataException($"{path}: larger than 64 MB");
        var names = File.ReadAllLines(path).Where(l => l.Length > 0).ToArray();
        if (names.Length is 0 or > MaxClasses) throw new InvalidDataException($"{path}: {names.Length} classes (need 1..{MaxClasses})");
        return names;
    }

    private static InvalidDataException Corrupt(string shard, string member, string why) => new($"shard {shard}: member {member}: {why}");

    public void Dispose()
    {
        foreach (var h in _handles) h.Dispose();
    }
}
