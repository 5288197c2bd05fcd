using System.Buffers.Binary;
using System.Text;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>A fresh directory under the system temp path, deleted with everything in it on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        FullPath = Path.Combine(Path.GetTempPath(), "jetpack-st-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(FullPath);
    }

    public string FullPath { get; }

    /// <summary>The full path of <paramref name="fileName"/> inside this directory (not created).</summary>
    public string File(string fileName) => Path.Combine(FullPath, fileName);

    /// <summary>Writes raw bytes as <paramref name="fileName"/> and returns its full path.</summary>
    public string WriteBytes(string fileName, byte[] bytes)
    {
        var path = File(fileName);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Writes a safetensors file by hand: the u64 length of <paramref name="json"/>, the JSON, the data.</summary>
    public string WriteSafetensors(string fileName, string json, byte[]? data = null) =>
        WriteBytes(fileName, SafetensorsBytes(Encoding.UTF8.GetBytes(json), data ?? []));

    /// <summary>Concatenates an 8-byte little-endian header length, the header and the data.</summary>
    public static byte[] SafetensorsBytes(byte[] header, byte[] data)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(FullPath, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
