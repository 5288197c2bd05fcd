using Jetpack.Model.Checkpoints;
using Jetpack.Model.Checkpoints.Pickle;
using Xunit.Abstractions;

namespace Jetpack.Model.Tests.Checkpoints.Pickle;

/// <summary>
/// Issue 12, item 5, for the .pth reader: seeded truncations, byte flips in data.pkl and the zip
/// directory, huge sizes in the directory (32-bit and zip64) and in the pickle's integers, and
/// garbage — each case loads or throws <see cref="TorchCheckpointException"/>; see <see cref="MutationFuzz"/>.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class TorchMutationFuzzTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>Per fixture; both take ~2 s together on 2 cores.</summary>
    private const int Cases = 1000;

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>
    /// A BININT1 ('K', one byte) of data.pkl — sizes, strides, offsets, numels — replaced by a BININT
    /// of 2^29 or more; half the time another one set to 0 as well, so that a zero stride can make a
    /// huge size fit inside its storage (the copy-out a terabyte view would cost).
    /// </summary>
    private (byte[], string) HugePickleInt(string fixture, byte[] pickle, Random random)
    {
        var at = Enumerable.Range(0, pickle.Length - 1).Where(i => pickle[i] == (byte)'K').ToList();
        int i = at[random.Next(at.Count)], zero = at[random.Next(at.Count)];
        bool withZero = zero != i && random.Next(2) == 0;
        var bytes = (byte[])pickle.Clone();
        if (withZero)
            bytes[zero + 1] = 0;
        int value = new[] { int.MaxValue, 1 << 30, 1 << 29 }[random.Next(3)];
        byte[] mutated = [.. bytes[..i], (byte)'J', .. BitConverter.GetBytes(value), .. bytes[(i + 2)..]];
        var path = PickleFixtures.WithDataPkl(fixture, mutated, _dir.File("rewritten.pth"));
        return (File.ReadAllBytes(path), $"data.pkl byte {i} (a BININT1, possibly inside a string) made BININT {value}"
                                         + (withZero ? $", BININT1 at {zero} made 0" : ""));
    }

    /// <summary>A data entry's size in the central directory claimed huge through a zip64 extra field.</summary>
    private static (byte[], string) HugeZip64(byte[] valid, Random random)
    {
        var names = PickleFixtures.ReadEntriesOf(valid).Where(n => n.Contains("/data/", StringComparison.Ordinal)).ToList();
        var name = names[random.Next(names.Count)];
        long size = new[] { 4L << 40, long.MaxValue, 1L << 33 }[random.Next(3)];
        return (ZipSurgery.ClaimZip64Size(valid, name, size), $"zip64 size of {name} set to {size}");
    }

    private static long Load(string path)
    {
        using var checkpoint = TorchCheckpoint.Load(path);
        return checkpoint.StateDict.Values.Select(t => t.numel() * t.element_size()).DefaultIfEmpty(0).Max();
    }

    [Theory]
    [InlineData("vit_micro_state_dict.pth", 3_000)]
    [InlineData("dtypes_protocol4.pth", 4_000)]
    public void EveryMutationLoadsOrIsACheckpointError(string file, int baseSeed)
    {
        var fixture = PickleFixtures.Path(file);
        var valid = File.ReadAllBytes(fixture);
        var pickle = PickleFixtures.DataPkl(fixture);
        int pickleAt = valid.AsSpan().IndexOf(pickle); // torch stores entries uncompressed: data.pkl appears verbatim
        Assert.True(pickleAt > 0, "data.pkl not found verbatim in the fixture");
        var (cdAt, cdSize) = ZipSurgery.CentralDirectory(valid);
        MutationFuzz.Mutation mutate = random => random.Next(8) switch
        {
            0 => MutationFuzz.Truncate(valid, random),
            1 => MutationFuzz.Flip(valid, random, pickleAt, pickleAt + pickle.Length, "pickle", "()tsuRQKJXqhbc.N\x85\x86\x87"),
            2 => MutationFuzz.Flip(valid, random, cdAt, valid.Length, "zip directory", "\0\xffPK"),
            3 => MutationFuzz.HugeField(valid, random, cdAt, cdAt + cdSize, "central directory"),
            4 => MutationFuzz.HugeField(valid, random, valid.Length - 22, valid.Length, "end-of-directory record"),
            5 => HugeZip64(valid, random),
            6 => HugePickleInt(fixture, pickle, random),
            _ => MutationFuzz.Garbage(valid, random),
        };
        int refused = MutationFuzz.Run(_dir.File("mutant.pth"), baseSeed, Cases, mutate, Load, e => e is TorchCheckpointException, output);
        Assert.InRange(refused, Cases / 3, Cases); // flips inside names or float payloads may load; most damage must be caught
    }
}
