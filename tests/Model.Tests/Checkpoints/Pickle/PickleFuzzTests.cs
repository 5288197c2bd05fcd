using System.Diagnostics;
using Jetpack.Model.Checkpoints.Pickle;
using Xunit.Abstractions;

namespace Jetpack.Model.Tests.Checkpoints.Pickle;

/// <summary>
/// Damaged checkpoints fail with <see cref="TorchCheckpointFormatException"/> or
/// <see cref="UnsafePickleException"/> and nothing else: no IndexOutOfRange, no InvalidCast, no
/// torch error from a bad view reaching as_strided, no hang, no native crash.
/// </summary>
public sealed class PickleFuzzTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>One load of an 18 KB file takes milliseconds; this much means a loop that does not end.</summary>
    private static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(20);

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Loads everything; true if accepted, false if refused with one of our exceptions. Anything else propagates and fails the test.</summary>
    private static bool TryLoad(string path)
    {
        var load = Task.Run(() =>
        {
            try
            {
                TorchCheckpoint.Load(path).Dispose();
                return true;
            }
            catch (TorchCheckpointException)
            {
                return false;
            }
        });
        Assert.True(load.Wait(HangLimit), $"loading {path} did not finish within {HangLimit}");
        return load.Result; // rethrows (wrapped) any foreign exception type
    }

    [Theory]
    [InlineData("vit_micro_state_dict.pth")]
    [InlineData("dtypes_protocol4.pth")] // frames, memoize, stack globals, views, a parameter
    public void EveryTruncationOfDataPklIsRefused(string file)
    {
        var fixture = PickleFixtures.Path(file);
        var pickle = PickleFixtures.DataPkl(fixture);
        var path = _dir.File("truncated.pth");
        for (int length = 0; length < pickle.Length; length++)
        {
            PickleFixtures.WithDataPkl(fixture, pickle[..length], path);
            Assert.False(TryLoad(path), $"data.pkl cut to {length} of {pickle.Length} bytes was accepted");
        }
        PickleFixtures.WithDataPkl(fixture, pickle, path);
        Assert.True(TryLoad(path)); // the rewritten zip itself is fine
    }

    [Theory]
    [InlineData("vit_micro_state_dict.pth")]
    [InlineData("dtypes.pth")]
    public void RandomDataPklCorruptionOnlyThrowsCheckpointErrors(string file)
    {
        var fixture = PickleFixtures.Path(file);
        var pickle = PickleFixtures.DataPkl(fixture);
        var random = new Random(20240611);
        var path = _dir.File("corrupt.pth");
        int rejected = 0;
        const int trials = 400;
        for (int trial = 0; trial < trials; trial++)
        {
            var bytes = (byte[])pickle.Clone();
            int flips = random.Next(1, 4);
            for (int f = 0; f < flips; f++)
            {
                int at = random.Next(bytes.Length);
                bytes[at] = random.Next(3) switch
                {
                    0 => (byte)random.Next(256),
                    1 => (byte)"()tsuRQKJXqhbc.N\x85\x86\x87"[random.Next(19)], // opcode-shaped damage
                    _ => (byte)(bytes[at] ^ (1 << random.Next(8))),
                };
            }
            PickleFixtures.WithDataPkl(fixture, bytes, path);
            if (!TryLoad(path))
                rejected++;
        }
        output.WriteLine($"{rejected} of {trials} corrupted data.pkl files refused");
        // Flips inside key strings or float payloads load fine; most others must be caught.
        Assert.InRange(rejected, trials / 2, trials);
    }

    [Fact]
    public void RandomWholeFileCorruptionOnlyThrowsCheckpointErrors()
    {
        // Damage to the zip structure itself: local and central headers, sizes, names, data.
        var valid = File.ReadAllBytes(PickleFixtures.Path("vit_micro_state_dict.pth"));
        var random = new Random(7);
        var path = _dir.File("corrupt-zip.pth");
        var watch = Stopwatch.StartNew();
        int rejected = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            var bytes = (byte[])valid.Clone();
            for (int f = random.Next(1, 4); f > 0; f--)
                bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
            File.WriteAllBytes(path, bytes);
            if (!TryLoad(path))
                rejected++;
        }
        // Most of the file is storage bytes, where a flip is a different but valid value
        // (entry CRC-32s are not verified: ZipArchive does not for stored entries, nor does this reader).
        output.WriteLine($"{rejected} of 300 corrupted files refused in {watch.Elapsed.TotalSeconds:F1} s");
        Assert.True(watch.Elapsed < TimeSpan.FromMinutes(2), $"300 corrupt loads took {watch.Elapsed}");
    }
}
