using System.Formats.Tar;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Jetpack.Model.Data;

namespace Jetpack.Application.Data;

/// <summary>What <see cref="ShardPacker.Pack"/> did: images written and skipped per split, and the shards.</summary>
public sealed record PackResult(IReadOnlyDictionary<string, int> Written, IReadOnlyList<string> Skipped, IReadOnlyList<string> Shards, int Resumed);

/// <summary>
/// `jetpack data pack`: converts a class-folder tree (root/train, root/val) into WebDataset tar shards
/// (<c>train-000000.tar</c>, members <c>key.jpg</c> + <c>key.cls</c>, <c>classes.txt</c>) that
/// <see cref="ShardDataset"/> reads. Images go in ImageFolder order (the index's), each shard closed
/// before it would pass the shard size. Every image is decoded before it is written; one that does
/// not decode is left out and listed in <c>skipped.txt</c>. Resumable: each shard is written to a
/// temporary name and renamed when complete, and <c>pack-state.json</c> (rewritten after every shard)
/// records how many images of each split the completed shards hold, so a rerun continues after them.
/// </summary>
public static class ShardPacker
{
    public const string StateFile = "pack-state.json";

    private sealed record State(Dictionary<string, SplitState> Splits);
    private sealed record SplitState(int NextImage, int NextShard, List<string> Skipped);

    /// <param name="progress">(images done, images total) across the splits</param>
    public static PackResult Pack(string from, string outDir, long shardBytes, IProgress<(long Done, long Total)>? progress = null, CancellationToken cancel = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shardBytes, 1L << 16);
        var splits = new[] { "train", "val" }.Where(s => Directory.Exists(Path.Combine(from, s))).ToArray();
        if (splits.Length == 0) throw new DirectoryNotFoundException($"{from}: neither train/ nor val/ (a class-folder tree in ImageNet layout)");
        Directory.CreateDirectory(outDir);
        var indexes = splits.ToDictionary(s => s, s => ImageFolderIndex.Build(Path.Combine(from, s)));
        var classes = indexes[splits[0]].Classes;
        foreach (var (split, index) in indexes)
            if (!index.Classes.SequenceEqual(classes)) throw new InvalidDataException($"{index.Root}: its classes differ from {indexes[splits[0]].Root}'s");
        WriteAtomically(Path.Combine(outDir, "classes.txt"), Encoding.UTF8.GetBytes(string.Join("\n", classes) + "\n"));

        string statePath = Path.Combine(outDir, StateFile);
        var state = File.Exists(statePath) ? JsonSerializer.Deserialize<State>(File.ReadAllText(statePath)) ?? throw new InvalidDataException($"{statePath}: empty")
                                           : new State([]);
        long total = indexes.Values.Sum(i => (long)i.Images.Count), done = 0;
        int resumed = 0;
        var written = new Dictionary<string, int>();
        foreach (var split in splits)
        {
            var index = indexes[split];
            var s = state.Splits.GetValueOrDefault(split) ?? new SplitState(0, 0, []);
            if (s.NextImage > index.Images.Count) throw new InvalidDataException($"{statePath}: {split} resumes at image {s.NextImage}, the tree has {index.Images.Count}: another tree? remove {outDir} to start over");
            resumed += s.NextImage;
            done += s.NextImage;
            int next = s.NextImage, shard = s.NextShard, count = 0;
            var skipped = new List<string>(s.Skipped);
            foreach (var stale in Directory.GetFiles(outDir, $"{split}-*.tar.tmp")) File.Delete(stale);
            while (next < index.Images.Count)
            {
                cancel.ThrowIfCancellationRequested();
                string final = Path.Combine(outDir, $"{split}-{shard:D6}.tar"), temporary = final + ".tmp";
                long size = 0;
                using (var file = File.Create(temporary))
                using (var tar = new TarWriter(file, TarEntryFormat.Ustar, leaveOpen: false))
                {
                    while (next < index.Images.Count)
                    {
                        var image = index.Images[next];
                        if (size > 0 && size + image.Size + 2048 > shardBytes) break;       // the shard is full: close it
                        string path = index.PathOf(next);
                        var bytes = File.ReadAllBytes(path);
                        try
                        {
                            using var encoded = new EncodedImage(bytes, path);
                            _ = encoded.Decode(3);                                          // verifies the whole image decodes
                            string key = next.ToString("D9", CultureInfo.InvariantCulture);
                            tar.WriteEntry(Member(key + ".jpg", bytes));
                            tar.WriteEntry(Member(key + ".cls", Encoding.ASCII.GetBytes(image.Label.ToString(CultureInfo.InvariantCulture))));
                            size += bytes.Length + 2048;
                            count++;
                        }
                        catch (InvalidDataException e) when (UndecodableImage.PathOf(e) is not null)
                        {
                            skipped.Add(e.Message);
                        }
                        next++;
                        progress?.Report((++done, total));
                    }
                }
                File.Move(temporary, final, overwrite: true);
                shard++;
                state.Splits[split] = new SplitState(next, shard, skipped);
                WriteAtomically(statePath, JsonSerializer.SerializeToUtf8Bytes(state));
            }
            written[split] = count;
        }
        var allSkipped = state.Splits.Values.SelectMany(s => s.Skipped).ToList();
        WriteAtomically(Path.Combine(outDir, "skipped.txt"), Encoding.UTF8.GetBytes(string.Concat(allSkipped.Select(s => s + "\n"))));
        return new PackResult(written, allSkipped, [.. splits.SelectMany(s => ShardDataset.ShardFiles(outDir, s))], resumed);
    }

    // ustar with a fixed time: the same tree packs to the same bytes (also when resumed)
    private static UstarTarEntry Member(string name, byte[] data) =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data), ModificationTime = DateTimeOffset.UnixEpoch, Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead };

    /// <summary>"1GB", "512MB", "64KiB", "100000" (bytes): decimal units are powers of 1000, binary (KiB, MiB, GiB) of 1024.</summary>
    public static long ParseSize(string text, string field = "--shard-size")
    {
        var t = text.Trim();
        int split = t.TakeWhile(c => char.IsDigit(c) || c == '.').Count();
        if (split == 0 || !double.TryParse(t[..split], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double number))
            throw new ArgumentException($"{field}: '{text}' is not a size like 1GB or 512MiB");
        long unit = t[split..].Trim().ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "KB" => 1000,
            "MB" => 1000_000,
            "GB" => 1000_000_000,
            "TB" => 1000_000_000_000,
            "KIB" => 1L << 10,
            "MIB" => 1L << 20,
            "GIB" => 1L << 30,
            "TIB" => 1L << 40,
            var u => throw new ArgumentException($"{field}: unknown unit '{u}' in '{text}' (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"),
        };
        double bytes = number * unit;
        if (!(bytes >= 1 && bytes < long.MaxValue)) throw new ArgumentException($"{field}: '{text}' is out of range");
        return (long)bytes;
    }

    private static void WriteAtomically(string path, byte[] bytes)
    {
        var temporary = path + ".tmp";
        File.WriteAllBytes(temporary, bytes);
        File.Move(temporary, path, overwrite: true);
    }
}
