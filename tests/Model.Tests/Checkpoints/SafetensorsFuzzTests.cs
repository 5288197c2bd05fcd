using Jetpack.Model.Checkpoints;
using TorchSharp;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>
/// Corrupted files must fail with <see cref="SafetensorsFormatException"/> and nothing else:
/// no IndexOutOfRange, no OverflowException, no native crash from a bad shape reaching torch.
/// </summary>
public sealed class SafetensorsFuzzTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private byte[] ValidFile()
    {
        using var a = torch.arange(6, dtype: torch.ScalarType.Float32).reshape(2, 3);
        using var b = torch.tensor(new[] { true, false, true });
        using var c = torch.tensor(12L);
        using var d = torch.zeros(0, 2, dtype: torch.ScalarType.BFloat16);
        var path = _dir.File("valid.safetensors");
        SafetensorsWriter.Write(path, [new("a", a), new("b", b), new("c", c), new("d", d)],
                                new Dictionary<string, string> { ["format"] = "pt" });
        return File.ReadAllBytes(path);
    }

    /// <summary>Opens and reads everything; true if the file was accepted.</summary>
    private static bool TryReadAll(string path)
    {
        try
        {
            using var reader = SafetensorsReader.Open(path);
            foreach (var tensor in reader.ReadAll().Values)
                tensor.Dispose();
            return true;
        }
        catch (SafetensorsFormatException)
        {
            return false;
        }
    }

    [Fact]
    public void EveryTruncationIsAFormatError()
    {
        var valid = ValidFile();
        var path = _dir.File("truncated.safetensors");
        for (int length = 0; length < valid.Length; length++)
        {
            File.WriteAllBytes(path, valid[..length]);
            Assert.False(TryReadAll(path), $"a file cut to {length} of {valid.Length} bytes was accepted");
        }
    }

    [Fact]
    public void RandomByteCorruptionOnlyEverThrowsFormatErrors()
    {
        var valid = ValidFile();
        long headerEnd = 8 + BitConverter.ToInt64(valid, 0);
        var random = new Random(20240607);
        var path = _dir.File("corrupt.safetensors");
        int rejected = 0;
        const int trials = 2000;
        for (int trial = 0; trial < trials; trial++)
        {
            var bytes = (byte[])valid.Clone();
            int flips = random.Next(1, 4);
            for (int f = 0; f < flips; f++)
            {
                // Mostly the header, where the structure lives; sometimes the length or the data.
                int at = random.Next(10) < 8 ? random.Next(8, (int)headerEnd) : random.Next(bytes.Length);
                bytes[at] = random.Next(3) switch
                {
                    0 => (byte)random.Next(256),
                    1 => (byte)"{}[],:\"0123456789-. e"[random.Next(21)], // JSON-shaped damage
                    _ => (byte)(bytes[at] ^ (1 << random.Next(8))),
                };
            }
            File.WriteAllBytes(path, bytes);
            if (!TryReadAll(path))
                rejected++;
        }
        Assert.InRange(rejected, trials / 2, trials); // most corruption must be caught, not shrugged off
    }
}
