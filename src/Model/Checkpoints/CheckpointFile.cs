using System.Runtime.InteropServices;

namespace Jetpack.Model.Checkpoints;

/// <summary>What a checkpoint file is, by its first bytes (never by its extension).</summary>
public enum CheckpointFormat
{
    Unknown,
    /// <summary>An 8-byte little-endian header length, then a JSON object: byte 8 is '{'.</summary>
    Safetensors,
    /// <summary>torch.save ≥ 1.6: a zip archive ("PK\3\4").</summary>
    TorchZip,
    /// <summary>torch.save before 1.6 (or _use_new_zipfile_serialization=False): a bare pickle (PROTO 0x80).</summary>
    TorchLegacy,
}

/// <summary>
/// The one place where both checkpoint readers ask "is this a readable regular file?" before
/// opening it, and what format its magic bytes say it is. Opening a FIFO blocks until a writer
/// appears and a character device (/dev/zero) never ends, so those are refused from their
/// file type, before <c>open</c>; a directory or an empty file gets a message that says so
/// instead of "not found" or "starts with , not …".
/// </summary>
public static class CheckpointFile
{
    /// <summary>
    /// The full path of <paramref name="path"/> if it is a non-empty regular file (symbolic links
    /// followed). A missing file throws <see cref="FileNotFoundException"/>; anything else unusable
    /// throws what <paramref name="fail"/> makes of (full path, problem), so each reader keeps its
    /// own exception type.
    /// </summary>
    public static string CheckReadable(string path, Func<string, string, Exception> fail)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var fullPath = Path.GetFullPath(path);
        if (Directory.Exists(fullPath))
            throw fail(fullPath, "is a directory, not a checkpoint file");
        if (!File.Exists(fullPath))
            throw new FileNotFoundException($"checkpoint not found: {fullPath}", fullPath);
        if (FileTypeOf(fullPath) is { } type && type != RegularFile)
            throw fail(fullPath, $"is not a regular file (it is a {Describe(type)}); refusing to read it, since reading could block or never end");
        if (new FileInfo(fullPath).Length == 0)
            throw fail(fullPath, "is empty (0 bytes)");
        return fullPath;
    }

    /// <summary>Why <paramref name="path"/> cannot be read as a checkpoint ("not found: …", "… is a directory, …"), or null if it can: for validators that name the field.</summary>
    public static string? Problem(string path)
    {
        try { CheckReadable(path, (full, problem) => new InvalidDataException($"{full} {problem}")); return null; }
        catch (Exception e) when (e is FileNotFoundException or InvalidDataException or IOException or UnauthorizedAccessException or ArgumentException) { return e.Message; }
    }

    /// <summary>The format the first bytes of a (checked, regular) file announce.</summary>
    public static CheckpointFormat Sniff(string fullPath)
    {
        Span<byte> head = stackalloc byte[9];
        int read;
        using (var file = File.OpenHandle(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read))
            read = RandomAccess.Read(file, head, 0);
        head = head[..read];
        if (head.StartsWith("PK\x03\x04"u8))
            return CheckpointFormat.TorchZip;
        // A safetensors header length is below 100 MB, so its high bytes are zero; the JSON opens with '{'.
        // Asked before the pickle test: a 128-byte header's length starts with byte 0x80 too.
        if (head.Length == 9 && head[8] == (byte)'{' && head[4..8].IndexOfAnyExcept((byte)0) < 0)
            return CheckpointFormat.Safetensors;
        if (head.Length > 0 && head[0] == 0x80)
            return CheckpointFormat.TorchLegacy;
        return CheckpointFormat.Unknown;
    }

    /// <summary>What a safetensors loader says when handed a torch.save file.</summary>
    public static string PthGivenForSafetensors(CheckpointFormat format) =>
        $"is a PyTorch {(format == CheckpointFormat.TorchLegacy ? "legacy " : "")}.pth file (torch.save), not safetensors; this loader expects safetensors "
        + "(convert in Python: safetensors.torch.save_file(torch.load(path), out); dense .pth checkpoints are read as they are by `jetpack recycle`)";

    // st_mode's file-type bits (POSIX <sys/stat.h>; the same values on every Linux architecture).
    private const uint TypeMask = 0xF000, RegularFile = 0x8000;

    private static string Describe(uint type) => type switch
    {
        0x1000 => "FIFO (named pipe)",
        0x2000 => "character device",
        0x6000 => "block device",
        0xC000 => "socket",
        _ => $"special file (type 0x{type:X4})",
    };

    /// <summary>
    /// stat(2)'s file type, or null where it cannot be asked (not Linux x64/arm64): .NET exposes no
    /// file type beyond "directory", so this asks libc. st_mode sits after st_dev, st_ino and
    /// (on x64 only) st_nlink, all 8 bytes wide; the buffer is larger than either struct stat.
    /// </summary>
    private static uint? FileTypeOf(string fullPath)
    {
        int? modeOffset = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 24,
            Architecture.Arm64 => 16,
            _ => null,
        };
        if (!OperatingSystem.IsLinux() || modeOffset is null)
            return null;
        var buffer = new byte[512];
        try
        {
            if (Stat(fullPath, buffer) != 0)
                return null; // it vanished or cannot be inspected: opening it will say why
        }
        catch (EntryPointNotFoundException)
        {
            return null; // glibc before 2.33 exports only __xstat
        }
        return BitConverter.ToUInt32(buffer, modeOffset.Value) & TypeMask;
    }

    [DllImport("libc", EntryPoint = "stat", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int Stat(string path, byte[] buffer);
}
