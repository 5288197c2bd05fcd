using System.IO.Compression;
using System.Text;
using TorchSharp;

namespace Jetpack.Model.Checkpoints.Pickle;

/// <summary>
/// A torch.save file in the zip format of PyTorch ≥ 1.6: under one top folder (its name varies
/// with the writer, often the file's stem or "archive") sit data.pkl (the pickled object),
/// data/&lt;key&gt; (each storage's raw little-endian bytes), version, and in newer writers
/// byteorder and .data/serialization_id. torch stores entries uncompressed; a compressed entry
/// would still read, only slower.
/// <para>Not thread-safe: a ZipArchive reads through one shared file stream.</para>
/// </summary>
public sealed class TorchArchive : IDisposable
{
    /// <summary>
    /// data.pkl holds structure, not tensor data: ~150 bytes per tensor, so kilobytes for a ViT and
    /// a few MB for 10⁴ tensors. Larger ones are refused unread, because interpreting a pickle
    /// can cost ~50× its size in managed objects (one byte, EMPTY_LIST, makes one list).
    /// </summary>
    private const long MaxPickleBytes = 32L << 20;

    private readonly ZipArchive _zip;
    private readonly Dictionary<string, ZipArchiveEntry> _entries;

    private readonly long _fileLength;

    private TorchArchive(string path, ZipArchive zip, Dictionary<string, ZipArchiveEntry> entries, string prefix, long fileLength)
    {
        Path = path;
        _fileLength = fileLength;
        _zip = zip;
        _entries = entries;
        Prefix = prefix;
    }

    /// <summary>The full path of the file.</summary>
    public string Path { get; }

    /// <summary>The archive's top folder name.</summary>
    public string Prefix { get; }

    /// <summary>Opens <paramref name="path"/>; throws <see cref="TorchCheckpointFormatException"/> naming the file if it is not a readable torch.save archive.</summary>
    public static TorchArchive Open(string path)
    {
        var fullPath = CheckpointFile.CheckReadable(path, (full, problem) => Bad(full, problem));
        var stream = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            CheckSignature(stream, fullPath);
            var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false);
            try
            {
                var entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
                foreach (var entry in zip.Entries)
                    if (!entries.TryAdd(entry.FullName, entry))
                        throw Bad(fullPath, $"the zip holds '{entry.FullName}' twice");
                var archive = new TorchArchive(fullPath, zip, entries, FindPrefix(entries.Keys, fullPath), stream.Length);
                archive.CheckByteOrder();
                return archive;
            }
            catch
            {
                zip.Dispose();
                throw;
            }
        }
        catch (InvalidDataException e)
        {
            stream.Dispose();
            throw Bad(fullPath, $"not a readable zip archive (truncated or corrupt?): {e.Message}", e);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>The bytes of data.pkl.</summary>
    public byte[] ReadPickle()
    {
        var entry = _entries[Prefix + "/data.pkl"];
        CheckClaimedSize(entry, null);
        if (entry.Length > MaxPickleBytes)
            throw Bad(Path, $"data.pkl claims {entry.Length} bytes, beyond the {MaxPickleBytes}-byte limit for a pickle of structure");
        var bytes = new byte[entry.Length];
        ReadEntry(entry, bytes, null);
        return bytes;
    }

    /// <summary>
    /// Reads a storage into a new 1-D CPU tensor of <see cref="PickledStorage.Numel"/> elements,
    /// straight from the zip into the tensor's native memory (no managed copy). The entry's size
    /// must match numel × element size exactly: it is checked before allocating.
    /// <paramref name="key"/> is the state-dict key that needs it, for messages.
    /// </summary>
    internal torch.Tensor ReadStorage(PickledStorage storage, string? key)
    {
        var entry = CheckStorage(storage, key);
        var tensor = torch.empty(storage.Numel, storage.DType, torch.CPU);
        try
        {
            using var stream = OpenEntry(entry, key);
            TensorBytes.ForEachChunk(tensor, (chunk, _) => ReadExactly(stream, chunk, entry, key));
            if (storage.DType == torch.ScalarType.Bool)
                TensorBytes.ForEachChunk(tensor, (chunk, offset) =>
                {
                    int bad = chunk.IndexOfAnyExcept((byte)0, (byte)1);
                    if (bad >= 0)
                        throw new TorchCheckpointFormatException(Path, key, $"bool storage '{storage.Key}' element {offset + bad} is byte {chunk[bad]}, not 0 or 1");
                });
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    public void Dispose() => _zip.Dispose();

    /// <summary>The file's length in bytes: no tensor built from it may be larger (see <see cref="TorchCheckpoint"/>).</summary>
    internal long FileLength => _fileLength;

    /// <summary>
    /// The storage's entry, once its sizes are proven sane: the entry exists, holds exactly numel ×
    /// element size bytes, and that size fits in the file. Reads nothing; called for every storage
    /// before any is allocated, so a pickle or a zip64 record claiming terabytes is refused here.
    /// </summary>
    internal ZipArchiveEntry CheckStorage(PickledStorage storage, string? key)
    {
        if (!_entries.TryGetValue($"{Prefix}/data/{storage.Key}", out var entry))
            throw new TorchCheckpointFormatException(Path, key, $"storage '{storage.Key}' has no entry {Prefix}/data/{storage.Key}");
        long elementSize = SafetensorsDTypes.FromScalarType(storage.DType).ElementSize(); // every allow-listed type has one
        long expected = storage.Numel > long.MaxValue / elementSize ? -1 : storage.Numel * elementSize;
        if (expected < 0 || expected > _fileLength)
            throw new TorchCheckpointFormatException(Path, key,
                $"storage '{storage.Key}' claims {storage.Numel} x {storage.DType} ({(expected < 0 ? "over 2^63" : expected.ToString())} bytes), "
                + $"more than the whole {_fileLength}-byte file");
        CheckClaimedSize(entry, key);
        if (entry.Length != expected)
            throw new TorchCheckpointFormatException(Path, key,
                $"storage '{storage.Key}' should hold {storage.Numel} x {storage.DType} ({expected} bytes) but its entry has {entry.Length} bytes ({entry.FullName})");
        return entry;
    }

    /// <summary>
    /// An entry's sizes come from the zip directory (zip64 records allow 2^64), which nothing ties to
    /// the file: both must fit in the file. torch.save stores entries uncompressed, so this refuses
    /// only a compressed entry that would inflate past the whole file's size — never a torch file.
    /// </summary>
    private void CheckClaimedSize(ZipArchiveEntry entry, string? key)
    {
        if (entry.Length > _fileLength || entry.CompressedLength > _fileLength)
            throw new TorchCheckpointFormatException(Path, key,
                $"zip entry '{entry.FullName}' claims {entry.Length} bytes ({entry.CompressedLength} stored), more than the whole {_fileLength}-byte file");
    }

    /// <summary>Zip files start with a local header "PK\3\4"; the legacy format starts with a pickle (PROTO, 0x80) or is a tar.</summary>
    private static void CheckSignature(FileStream stream, string path)
    {
        Span<byte> head = stackalloc byte[4];
        int read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        stream.Position = 0;
        if (read == 4 && head.SequenceEqual("PK\x03\x04"u8))
            return;
        if (read > 0 && head[0] == 0x80)
            throw Bad(path, "legacy torch.save format is not supported; re-save with torch.save(..., _use_new_zipfile_serialization=True)");
        throw Bad(path, $"not a torch.save zip archive (it starts with {Convert.ToHexString(head[..read])}, not the zip signature 504B0304)");
    }

    /// <summary>The one top folder holding data.pkl; a TorchScript archive (code/, constants.pkl) is refused by name.</summary>
    private static string FindPrefix(IEnumerable<string> names, string path)
    {
        var all = names.ToList();
        if (all.Any(n => n.EndsWith("/constants.pkl", StringComparison.Ordinal) || n.Contains("/code/", StringComparison.Ordinal)))
            throw Bad(path, "this is a TorchScript archive (torch.jit.save), not a torch.save state dict; "
                            + "load it in Python and torch.save(model.state_dict()) instead");
        var prefixes = all.Where(n => n.EndsWith("/data.pkl", StringComparison.Ordinal))
                          .Select(n => n[..^"/data.pkl".Length])
                          .Where(p => p.Length > 0 && !p.Contains('/'))
                          .ToList();
        return prefixes.Count switch
        {
            1 => prefixes[0],
            0 => throw Bad(path, "the zip has no <folder>/data.pkl entry; it is not a torch.save archive"),
            _ => throw Bad(path, $"the zip has {prefixes.Count} data.pkl entries ({string.Join(", ", prefixes)}); which one is the checkpoint is ambiguous"),
        };
    }

    /// <summary>Storages are copied byte for byte, so they must be little-endian like this machine. Writers before torch 1.13.x omit the record: little-endian.</summary>
    private void CheckByteOrder()
    {
        if (!BitConverter.IsLittleEndian)
            throw Bad(Path, "this reader assumes a little-endian machine");
        if (!_entries.TryGetValue(Prefix + "/byteorder", out var entry))
            return;
        CheckClaimedSize(entry, null);
        if (entry.Length > 16)
            throw Bad(Path, $"the byteorder record has {entry.Length} bytes");
        var bytes = new byte[entry.Length];
        ReadEntry(entry, bytes, null);
        var order = Encoding.ASCII.GetString(bytes).Trim();
        if (order != "little")
            throw Bad(Path, $"storages are stored '{order}'-endian; only little-endian checkpoints are supported");
    }

    private void ReadEntry(ZipArchiveEntry entry, Span<byte> destination, string? key)
    {
        using var stream = OpenEntry(entry, key);
        ReadExactly(stream, destination, entry, key);
    }

    private Stream OpenEntry(ZipArchiveEntry entry, string? key)
    {
        try
        {
            return entry.Open();
        }
        catch (InvalidDataException e)
        {
            throw new TorchCheckpointFormatException(Path, key, $"zip entry '{entry.FullName}' cannot be opened: {e.Message}", e);
        }
    }

    private void ReadExactly(Stream stream, Span<byte> destination, ZipArchiveEntry entry, string? key)
    {
        try
        {
            stream.ReadExactly(destination);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new TorchCheckpointFormatException(Path, key, $"zip entry '{entry.FullName}' cannot be read in full: {e.Message}", e);
        }
    }

    private static TorchCheckpointFormatException Bad(string path, string problem, Exception? inner = null) => new(path, null, problem, inner);
}
