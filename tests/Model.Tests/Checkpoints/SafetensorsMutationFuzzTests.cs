using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Tests.Checkpoints.Pickle;
using TorchSharp;
using Xunit.Abstractions;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>
/// Issue 12, item 5, for the safetensors reader: seeded truncations, byte flips in the header,
/// huge header lengths, shapes and offsets, and garbage — each case loads or throws
/// <see cref="SafetensorsFormatException"/>; see <see cref="MutationFuzz"/>.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class SafetensorsMutationFuzzTests(ITestOutputHelper output) : IDisposable
{
    private static readonly string[] HugeNumbers = ["1099511627776", "9223372036854775807", "18446744073709551615", "4611686018427387904", "4294967296"];

    /// <summary>Per source file; both take ~2 s together on 2 cores.</summary>
    private const int Cases = 1000;

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private byte[] WriterFile()
    {
        using var a = torch.arange(6, dtype: torch.ScalarType.Float32).reshape(2, 3);
        using var b = torch.tensor(new[] { true, false, true });
        using var c = torch.zeros(0, 2, dtype: torch.ScalarType.BFloat16);
        using var d = torch.ones(4, dtype: torch.ScalarType.Float16);
        var path = _dir.File("writer.safetensors");
        SafetensorsWriter.Write(path, [new("a", a), new("b", b), new("c", c), new("d", d)], new Dictionary<string, string> { ["format"] = "pt" });
        return File.ReadAllBytes(path);
    }

    /// <summary>One number of the JSON header (a dim, an offset) replaced by a huge one, the length prefix kept consistent.</summary>
    private static (byte[], string) HugeJsonNumber(byte[] valid, Random random)
    {
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        var json = Encoding.UTF8.GetString(valid, 8, headerLength);
        var numbers = Regex.Matches(json, @"(?<=[\[,])\d+(?=[\],])");
        var target = numbers[random.Next(numbers.Count)];
        var huge = HugeNumbers[random.Next(HugeNumbers.Length)];
        var mutated = json[..target.Index] + huge + json[(target.Index + target.Length)..];
        return (TempDirectory.SafetensorsBytes(Encoding.UTF8.GetBytes(mutated), valid[(8 + headerLength)..]),
                $"header number {target.Value} at char {target.Index} set to {huge}");
    }

    private static long ReadAll(string path)
    {
        using var reader = SafetensorsReader.Open(path);
        long largest = 0;
        foreach (var tensor in reader.ReadAll().Values)
            using (tensor)
                largest = Math.Max(largest, tensor.numel() * tensor.element_size());
        return largest;
    }

    [Theory]
    [InlineData("writer", 1_000)]
    [InlineData("python", 2_000)]
    public void EveryMutationLoadsOrIsAFormatError(string source, int baseSeed)
    {
        var valid = source == "writer" ? WriterFile() : File.ReadAllBytes(PickleFixtures.Path("vit_micro.safetensors"));
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        MutationFuzz.Mutation mutate = random => random.Next(6) switch
        {
            0 => MutationFuzz.Truncate(valid, random),
            1 => MutationFuzz.Flip(valid, random, 8, headerEnd, "header", "{}[],:\"0123456789-. e"),
            2 => MutationFuzz.HugeField(valid, random, 0, 8, "header length"),
            3 => HugeJsonNumber(valid, random),
            4 => MutationFuzz.Flip(valid, random, 0, valid.Length, "file", "\0\x01\xff"),
            _ => MutationFuzz.Garbage(valid, random),
        };
        int refused = MutationFuzz.Run(_dir.File("mutant.safetensors"), baseSeed, Cases, mutate, ReadAll, e => e is SafetensorsFormatException, output);
        Assert.InRange(refused, Cases / 2, Cases); // most damage must be caught, not shrugged off
    }
}
