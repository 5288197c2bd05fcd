using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Jetpack.Model.Data;

/// <summary>One image of an <see cref="ImageFolderIndex"/>: its path under the root, its label and its size in bytes.</summary>
public readonly record struct IndexedImage(string RelativePath, int Label, long Size);

/// <summary>
/// The listing of a class-folder tree (torchvision ImageFolder order, see <see cref="ImageFolderDataset"/>),
/// made once and kept in a file, so a million-file tree is not walked again at every start or by every
/// rank. The file is UTF-8 text: a version line, the root, the classes with their folders' last-write
/// times (a file added to or removed from a class folder changes it: the index is then stale and
/// rebuilt), one line per image (label, size, relative path), and a SHA-256 of everything before it
/// (a torn or edited file is corrupt: rebuilt with a message naming the file and the problem).
/// Written to a temporary name and renamed, so ranks building it at once never see half a file.
/// </summary>
public sealed class ImageFolderIndex
{
    public const string Magic = "jetpack-imagefolder-index 1";
    /// <summary>Bounds on what a read index may declare before anything is allocated for it.</summary>
    public const int MaxClasses = 1_000_000;
    public const int MaxImages = 100_000_000;

    private ImageFolderIndex(string root, string[] classes, long[] classStamps, IndexedImage[] images)
    {
        Root = root; Classes = classes; ClassStamps = classStamps; Images = images;
    }

    /// <summary>The full path of the root (the folder holding one sub-folder per class).</summary>
    public string Root { get; }
    /// <summary>Class names by label: folder names sorted ordinally.</summary>
    public IReadOnlyList<string> Classes { get; }
    /// <summary>Each class folder's last write time (UTC ticks) when the index was made.</summary>
    public IReadOnlyList<long> ClassStamps { get; }
    public IReadOnlyList<IndexedImage> Images { get; }

    /// <summary>Walks <paramref name="root"/> (one stat per class folder, one listing per directory).</summary>
    public static ImageFolderIndex Build(string root)
    {
        root = Path.GetFullPath(root);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"image folder root {root} does not exist");
        var classes = Directory.GetDirectories(root).Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal).ToArray();
        if (classes.Length == 0) throw new InvalidDataException($"image folder root {root} has no class sub-folders");
        var stamps = classes.Select(c => Directory.GetLastWriteTimeUtc(Path.Combine(root, c)).Ticks).ToArray();
        var images = new List<IndexedImage>();
        for (int label = 0; label < classes.Length; label++)
        {
            CheckName(classes[label], root);
            int before = images.Count;
            foreach (var file in ImagesUnder(Path.Combine(root, classes[label])))
            {
                var relative = Path.GetRelativePath(root, file);
                CheckName(relative, root);
                images.Add(new IndexedImage(relative, label, new FileInfo(file).Length));
            }
            if (images.Count == before)
                throw new InvalidDataException(
                    $"class folder '{classes[label]}' under {root} has no images (looked for {string.Join(", ", ImageDecoder.Extensions)}, any case)");
        }
        return new ImageFolderIndex(root, classes, stamps, [.. images]);
    }

    /// <summary>
    /// The index of <paramref name="root"/> kept at <paramref name="indexPath"/>: read when it is there,
    /// intact and fresh; otherwise built and written (atomically). <paramref name="log"/> hears why it was rebuilt.
    /// </summary>
    public static ImageFolderIndex OpenOrBuild(string root, string indexPath, Action<string>? log = null)
    {
        root = Path.GetFullPath(root);
        if (File.Exists(indexPath))
        {
            try
            {
                var read = Read(indexPath);
                if (read.Root != root) log?.Invoke($"{indexPath}: indexes {read.Root}, not {root}: rebuilding");
                else if (read.StaleReason() is { } why) log?.Invoke($"{indexPath}: stale ({why}): rebuilding");
                else return read;
            }
            catch (InvalidDataException e)
            {
                log?.Invoke($"{e.Message}: rebuilding");
            }
        }
        var built = Build(root);
        built.Write(indexPath);
        return built;
    }

    /// <summary>Why the tree no longer matches the index (classes added/removed, a class folder changed), or null.</summary>
    public string? StaleReason()
    {
        if (!Directory.Exists(Root)) return $"{Root} is gone";
        var now = Directory.GetDirectories(Root).Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal).ToArray();
        if (!now.SequenceEqual(Classes)) return $"the class folders changed ({Classes.Count} indexed, {now.Length} now)";
        for (int c = 0; c < now.Length; c++)
            if (Directory.GetLastWriteTimeUtc(Path.Combine(Root, now[c])).Ticks != ClassStamps[c])
                return $"class folder '{now[c]}' changed since it was indexed";
        return null;
    }

    public void Write(string path)
    {
        var text = new StringBuilder();
        text.Append(Magic).Append('\n');
        text.Append("root\t").Append(Root).Append('\n');
        text.Append("classes\t").Append(Classes.Count.ToString(CultureInfo.InvariantCulture)).Append('\n');
        for (int c = 0; c < Classes.Count; c++)
            text.Append(ClassStamps[c].ToString(CultureInfo.InvariantCulture)).Append('\t').Append(Classes[c]).Append('\n');
        text.Append("images\t").Append(Images.Count.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (var image in Images)
            text.Append(image.Label.ToString(CultureInfo.InvariantCulture)).Append('\t')
                .Append(image.Size.ToString(CultureInfo.InvariantCulture)).Append('\t').Append(image.RelativePath).Append('\n');
        var body = Encoding.UTF8.GetBytes(text.ToString());
        var trailer = Encoding.UTF8.GetBytes($"sha256\t{Convert.ToHexStringLower(SHA256.HashData(body))}\n");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        using (var file = File.Create(temporary))
        {
            file.Write(body);
            file.Write(trailer);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Reads and checks an index file; any problem throws <see cref="InvalidDataException"/> naming the file and the line.</summary>
    public static ImageFolderIndex Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int cut = bytes.AsSpan(0, Math.Max(0, bytes.Length - 1)).LastIndexOf((byte)'\n') + 1;     // start of the last line
        var trailer = Encoding.UTF8.GetString(bytes, cut, bytes.Length - cut).TrimEnd('\n');
        string expected = "sha256\t" + Convert.ToHexStringLower(SHA256.HashData(bytes.AsSpan(0, cut)));
        if (trailer != expected) throw Corrupt(path, "its checksum does not match (torn or edited file)");
        var lines = Encoding.UTF8.GetString(bytes, 0, cut).Split('\n');
        int at = 0;
        string Next() => at < lines.Length ? lines[at++] : throw Corrupt(path, $"ends at line {at}");
        string Field(string name)
        {
            var line = Next();
            return line.StartsWith(name + "\t", StringComparison.Ordinal) ? line[(name.Length + 1)..] : throw Corrupt(path, $"line {at}: expected '{name}'");
        }
        int Count(string name, int max) =>
            int.TryParse(Field(name), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n <= max ? n : throw Corrupt(path, $"line {at}: {name} must be 0..{max}");

        if (Next() != Magic) throw Corrupt(path, $"line 1: not '{Magic}'");
        var root = Field("root");
        int classCount = Count("classes", MaxClasses);
        var classes = new string[classCount];
        var stamps = new long[classCount];
        for (int c = 0; c < classCount; c++)
        {
            var parts = Next().Split('\t', 2);
            if (parts.Length != 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out stamps[c]))
                throw Corrupt(path, $"line {at}: not '<stamp>\\t<class>'");
            classes[c] = parts[1];
        }
        int imageCount = Count("images", MaxImages);
        var images = new IndexedImage[imageCount];
        for (int i = 0; i < imageCount; i++)
        {
            var parts = Next().Split('\t', 3);
            if (parts.Length != 3 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int label) || label >= classCount
                || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long size) || parts[2].Length == 0)
                throw Corrupt(path, $"line {at}: not '<label below {classCount}>\\t<size>\\t<path>'");
            images[i] = new IndexedImage(parts[2], label, size);
        }
        return new ImageFolderIndex(root, classes, stamps, images);
    }

    /// <summary>The full path of image <paramref name="i"/>.</summary>
    public string PathOf(int i) => Path.Combine(Root, Images[i].RelativePath);

    private static InvalidDataException Corrupt(string path, string why) => new($"image folder index {path}: {why}");

    private static void CheckName(string name, string root)
    {
        if (name.Contains('\t') || name.Contains('\n'))
            throw new InvalidDataException($"{Path.Combine(root, name)}: a tab or newline in a file or folder name cannot be indexed");
    }

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
}
