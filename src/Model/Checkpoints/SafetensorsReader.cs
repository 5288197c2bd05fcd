using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using TorchSharp;

namespace Jetpack.Model.Checkpoints;

/// <summary>
/// Reads a safetensors file (https://github.com/huggingface/safetensors, "Format"): an 8-byte
/// little-endian header length N, N bytes of JSON, then the raw little-endian tensor data.
/// <para>
/// <see cref="Open"/> reads and validates the whole header eagerly (see <see cref="SafetensorsHeader"/>)
/// and keeps only the file handle: the data section never passes through managed memory. Each
/// tensor is read with positioned reads (pread) straight into the new tensor's native storage, so
/// a 10 GB checkpoint costs 10 GB of tensors and nothing more. Positioned reads rather than a memory
/// map because a file truncated while open then fails with an exception instead of a SIGBUS that
/// kills the process; measured on this machine, a memory map was at most ~10% faster (both
/// ~6 GB/s for a 200 MB tensor once the destination uses huge pages, see <see cref="HugePages"/>).
/// </para>
/// Safe to read from several threads at once: positioned reads share no file cursor.
/// </summary>
public sealed class SafetensorsReader : IDisposable
{
    private readonly SafeFileHandle _file;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafetensorsEntry> _entries;

    private SafetensorsReader(string path, SafeFileHandle file, long dataStart, SafetensorsHeader header)
    {
        Path = path;
        _file = file;
        _dataStart = dataStart;
        _entries = header.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        Names = header.Entries.Select(e => e.Name).ToArray();
        Metadata = header.Metadata;
    }

    /// <summary>The full path of the file.</summary>
    public string Path { get; }

    /// <summary>The header's "__metadata__" (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensor names in the order of their data in the file.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>
    /// Opens <paramref name="path"/> and validates its header. Throws <see cref="FileNotFoundException"/> if
    /// it does not exist, <see cref="SafetensorsFormatException"/> if it is malformed, a directory, not a
    /// regular file, empty, or a torch.save (.pth) file (told apart by its magic bytes).
    /// </summary>
    public static SafetensorsReader Open(string path)
    {
        var fullPath = CheckpointFile.CheckReadable(path, (full, problem) => new SafetensorsFormatException(full, null, problem));
        var format = CheckpointFile.Sniff(fullPath);
        if (format is CheckpointFormat.TorchZip or CheckpointFormat.TorchLegacy)
            throw new SafetensorsFormatException(fullPath, null, CheckpointFile.PthGivenForSafetensors(format));
        var file = File.OpenHandle(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            var (dataStart, header) = ReadHeader(file, fullPath);
            return new SafetensorsReader(fullPath, file, dataStart, header);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <summary>Name, torch dtype and shape of <paramref name="name"/> from the header; reads no data.</summary>
    public TensorHeader GetHeader(string name)
    {
        var entry = Find(name);
        return new TensorHeader(entry.Name, entry.DType.ToScalarType(), (long[])entry.Shape.Clone());
    }

    /// <summary>The header entry of <paramref name="name"/>; throws <see cref="KeyNotFoundException"/> naming the file if absent.</summary>
    public SafetensorsEntry GetEntry(string name)
    {
        var entry = Find(name);
        return entry with { Shape = (long[])entry.Shape.Clone() }; // the caller may not mutate our copy
    }

    /// <summary>
    /// Reads one tensor: allocates it on the CPU, fills its storage from the file, then moves it to
    /// <paramref name="device"/> when that is not the CPU (one host-to-device copy). The caller owns
    /// the result (it joins the current dispose scope, like any torch factory's).
    /// </summary>
    public torch.Tensor ReadTensor(string name, torch.Device? device = null)
    {
        var entry = Find(name);
        ObjectDisposedException.ThrowIf(_file.IsClosed, this);
        var tensor = torch.empty(entry.Shape, entry.DType.ToScalarType(), torch.CPU);
        try
        {
            long start = _dataStart + entry.Begin;
            TensorBytes.ForEachChunk(tensor, (chunk, offset) =>
            {
                HugePages.Advise(chunk); // before the first write to the fresh pages: 4x faster to fill
                ReadExactly(chunk, start + offset, entry.Name);
            });
            if (entry.DType == SafetensorsDType.BOOL)
                CheckBooleans(tensor, entry.Name);
            if (device is null || device.type == DeviceType.CPU)
                return tensor;
            var moved = tensor.to(device);
            tensor.Dispose();
            return moved;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads rows [<paramref name="start"/>, start + <paramref name="count"/>) of dimension 0 only:
    /// a row-major slice along dim 0 is one contiguous byte range of the file, so nothing else is
    /// read (expert files: a rank reads just the experts it needs of another rank's range).
    /// </summary>
    public torch.Tensor ReadRows(string name, long start, long count)
    {
        var entry = Find(name);
        ObjectDisposedException.ThrowIf(_file.IsClosed, this);
        if (entry.Shape.Length == 0 || start < 0 || count < 0 || start + count > entry.Shape[0])
            throw new ArgumentOutOfRangeException(nameof(start), $"{Path}: rows [{start}, {start + count}) of '{name}' [{string.Join(", ", entry.Shape)}]");
        var shape = (long[])entry.Shape.Clone();
        shape[0] = count;
        var tensor = torch.empty(shape, entry.DType.ToScalarType(), torch.CPU);
        try
        {
            long rowBytes = entry.Shape[0] == 0 ? 0 : entry.ByteLength / entry.Shape[0];
            long first = _dataStart + entry.Begin + start * rowBytes;
            TensorBytes.ForEachChunk(tensor, (chunk, offset) => ReadExactly(chunk, first + offset, entry.Name));
            if (entry.DType == SafetensorsDType.BOOL) CheckBooleans(tensor, entry.Name);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>Reads every tensor, in file order; on failure disposes those already read.</summary>
    public Dictionary<string, torch.Tensor> ReadAll(torch.Device? device = null)
    {
        var tensors = new Dictionary<string, torch.Tensor>(Names.Count, StringComparer.Ordinal);
        try
        {
            foreach (var name in Names)
                tensors.Add(name, ReadTensor(name, device));
            return tensors;
        }
        catch
        {
            foreach (var tensor in tensors.Values)
                tensor.Dispose();
            throw;
        }
    }

    public void Dispose() => _file.Dispose();

    private SafetensorsEntry Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _entries.TryGetValue(name, out var entry)
            ? entry
            : throw new KeyNotFoundException($"safetensors file '{Path}' has no tensor '{name}' (it holds {_entries.Count})");
    }

    private static (long DataStart, SafetensorsHeader Header) ReadHeader(SafeFileHandle file, string path)
    {
        long fileLength = RandomAccess.GetLength(file);
        if (fileLength < sizeof(ulong))
            throw new SafetensorsFormatException(path, null, $"the file has {fileLength} bytes, fewer than the 8 of the header length");
        Span<byte> prefix = stackalloc byte[sizeof(ulong)];
        ReadExactly(file, prefix, 0, path, null);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        // Both checks come before the allocation, so a corrupt length cannot ask for exabytes.
        if (headerLength > SafetensorsHeader.MaxLength)
            throw new SafetensorsFormatException(path, null, $"the header length {headerLength} exceeds the {SafetensorsHeader.MaxLength}-byte limit");
        if (headerLength > (ulong)(fileLength - sizeof(ulong)))
            throw new SafetensorsFormatException(path, null, $"the header length {headerLength} runs past the end of the {fileLength}-byte file");

        var json = new byte[headerLength];
        ReadExactly(file, json, sizeof(ulong), path, null);
        long dataStart = sizeof(ulong) + (long)headerLength;
        return (dataStart, SafetensorsHeader.Parse(json, fileLength - dataStart, path));
    }

    private void ReadExactly(Span<byte> destination, long fileOffset, string tensorName) =>
        ReadExactly(_file, destination, fileOffset, Path, tensorName);

    /// <summary>Fills <paramref name="destination"/> from the file; a short file (truncated since open) is a format error.</summary>
    private static void ReadExactly(SafeFileHandle file, Span<byte> destination, long fileOffset, string path, string? tensorName)
    {
        while (!destination.IsEmpty)
        {
            int read = RandomAccess.Read(file, destination, fileOffset);
            if (read == 0)
                throw new SafetensorsFormatException(path, tensorName, $"the file ends at byte {fileOffset}, before the data the header promises (truncated after it was opened?)");
            destination = destination[read..];
            fileOffset += read;
        }
    }

    /// <summary>A torch bool must be byte 0 or 1; any other byte is undefined behaviour in torch's kernels.</summary>
    private void CheckBooleans(torch.Tensor tensor, string name) =>
        TensorBytes.ForEachChunk(tensor, (chunk, offset) =>
        {
            int bad = chunk.IndexOfAnyExcept((byte)0, (byte)1);
            if (bad >= 0)
                throw new SafetensorsFormatException(Path, name, $"BOOL element {offset + bad} is byte {chunk[bad]}, not 0 or 1");
        });
}
