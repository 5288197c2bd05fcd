using System.IO.Compression;

namespace Jetpack.Model.Tests.Checkpoints.Pickle;

/// <summary>Paths of the committed fixtures, and zip surgery to make variants of them.</summary>
public static class PickleFixtures
{
    /// <summary>The full path of a file written by Fixtures/make_fixtures.py, copied next to the test assembly.</summary>
    public static string Path(string fileName) =>
        System.IO.Path.Combine(AppContext.BaseDirectory, "Checkpoints", "Pickle", "Fixtures", fileName);

    /// <summary>Every entry of a zip, in order, with its bytes.</summary>
    public static List<(string Name, byte[] Bytes)> ReadEntries(string zipPath)
    {
        using var zip = ZipFile.OpenRead(zipPath);
        var entries = new List<(string, byte[])>();
        foreach (var entry in zip.Entries)
        {
            using var stream = entry.Open();
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            entries.Add((entry.FullName, copy.ToArray()));
        }
        return entries;
    }

    /// <summary>The entry names of a zip held in memory.</summary>
    public static List<string> ReadEntriesOf(byte[] zipBytes)
    {
        using var zip = new ZipArchive(new MemoryStream(zipBytes), ZipArchiveMode.Read);
        return zip.Entries.Select(e => e.FullName).ToList();
    }

    /// <summary>Writes a zip of stored (uncompressed) entries, as torch.save does, replacing any file at <paramref name="path"/>.</summary>
    public static string WriteZip(string path, IEnumerable<(string Name, byte[] Bytes)> entries)
    {
        File.Delete(path); // Create mode refuses an existing file
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            foreach (var (name, bytes) in entries)
            {
                using var stream = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                stream.Write(bytes);
            }
        }
        return path;
    }

    /// <summary>A torch.save-shaped archive: prefix/data.pkl, prefix/data/&lt;key&gt; for each storage, prefix/version.</summary>
    public static string WriteArchive(string path, byte[] dataPkl, IReadOnlyDictionary<string, byte[]>? storages = null, string prefix = "archive")
    {
        var entries = new List<(string, byte[])> { ($"{prefix}/data.pkl", dataPkl) };
        foreach (var (key, bytes) in storages ?? new Dictionary<string, byte[]>())
            entries.Add(($"{prefix}/data/{key}", bytes));
        entries.Add(($"{prefix}/version", "3\n"u8.ToArray()));
        return WriteZip(path, entries);
    }

    /// <summary>A copy of <paramref name="zipPath"/> with the data.pkl entry replaced (storages and the rest untouched).</summary>
    public static string WithDataPkl(string zipPath, byte[] dataPkl, string outPath) =>
        WriteZip(outPath, ReadEntries(zipPath).Select(e => e.Name.EndsWith("/data.pkl", StringComparison.Ordinal) ? (e.Name, dataPkl) : e));

    /// <summary>The data.pkl bytes of a fixture.</summary>
    public static byte[] DataPkl(string zipPath) =>
        ReadEntries(zipPath).Single(e => e.Name.EndsWith("/data.pkl", StringComparison.Ordinal)).Bytes;
}
