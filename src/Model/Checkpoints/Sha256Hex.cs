using System.Security.Cryptography;
using System.Text;

namespace Jetpack.Model.Checkpoints;

/// <summary>
/// The one SHA-256 helper for files and text, as lowercase hex: checkpoint manifests, recycle
/// sources and keys, the study's stage stamps, grain-state file names, submission hashes. (Tensors
/// on the wire are hashed by the codec, chunk by chunk.)
/// </summary>
public static class Sha256Hex
{
    /// <summary>SHA-256 of the file's bytes (one sequential read of the whole file).</summary>
    public static string OfFile(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>SHA-256 of the UTF-8 bytes of <paramref name="text"/>.</summary>
    public static string OfText(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
