using System.Diagnostics;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>
/// Seeded mutation fuzzing of checkpoint files (issue 12, item 5). Each case has its own seed
/// (base + index), so a failure names the one seed that reproduces it. A case passes when the
/// reader either loads — every tensor no larger than the file — or throws one of the reader's
/// own exceptions; any other exception, a hang, or resident memory growing by more than
/// <see cref="MaxGrowth"/> fails with the seed and the mutation.
/// </summary>
public static class MutationFuzz
{
    /// <summary>One load of these kilobyte files takes milliseconds; this much means a loop that does not end.</summary>
    public static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(10);

    /// <summary>The files are kilobytes: touching more than this means a claimed size was trusted.</summary>
    private const long MaxGrowth = 1L << 30;

    /// <summary>A mutation: the bytes to write and what was done, for the failure message.</summary>
    public delegate (byte[] Bytes, string What) Mutation(Random random);

    /// <param name="load">Loads the file and returns the byte size of its largest tensor.</param>
    /// <param name="ours">True for the reader's own exception types.</param>
    /// <returns>How many cases were refused.</returns>
    public static int Run(string path, int baseSeed, int cases, Mutation mutate, Func<string, long> load, Func<Exception, bool> ours, ITestOutputHelper output)
    {
        using var process = Process.GetCurrentProcess();
        long baseline = process.WorkingSet64;
        var watch = Stopwatch.StartNew();
        int refused = 0;
        for (int i = 0; i < cases; i++)
        {
            int seed = baseSeed + i;
            var (bytes, what) = mutate(new Random(seed));
            File.WriteAllBytes(path, bytes);
            var task = Task.Run(() => load(path));
            try
            {
                if (!task.Wait(HangLimit))
                    throw new XunitException($"seed {seed} ({what}): the load did not finish within {HangLimit}");
                if (task.Result > bytes.Length)
                    throw new XunitException($"seed {seed} ({what}): a {task.Result}-byte tensor came out of a {bytes.Length}-byte file");
            }
            catch (AggregateException e) when (e.InnerException is { } inner)
            {
                if (!ours(inner))
                    throw new XunitException($"seed {seed} ({what}): {inner.GetType().Name}, not a checkpoint error: {inner}");
                refused++;
            }
            process.Refresh();
            if (process.WorkingSet64 - baseline > MaxGrowth)
                throw new XunitException($"seed {seed} ({what}): resident memory grew by {(process.WorkingSet64 - baseline) >> 20} MB");
        }
        output.WriteLine($"seeds {baseSeed}..{baseSeed + cases - 1}: {refused} of {cases} refused, {cases - refused} loaded, {watch.Elapsed.TotalSeconds:F1} s");
        return refused;
    }

    public static (byte[], string) Truncate(byte[] valid, Random random)
    {
        int length = random.Next(valid.Length);
        return (valid[..length], $"truncated to {length} of {valid.Length} bytes");
    }

    /// <summary>1–3 bytes in [start, end) replaced by random, flipped-bit or given "shaped" bytes.</summary>
    public static (byte[], string) Flip(byte[] valid, Random random, int start, int end, string region, string shaped)
    {
        var bytes = (byte[])valid.Clone();
        var at = new List<int>();
        for (int n = random.Next(1, 4); n > 0; n--)
        {
            int i = random.Next(start, end);
            at.Add(i);
            bytes[i] = random.Next(3) switch
            {
                0 => (byte)random.Next(256),
                1 => (byte)shaped[random.Next(shaped.Length)],
                _ => (byte)(bytes[i] ^ (1 << random.Next(8))),
            };
        }
        return (bytes, $"bytes {string.Join(", ", at)} of the {region} changed");
    }

    /// <summary>A 4- or 8-byte little-endian field at a random offset in [start, end) set to a huge value.</summary>
    public static (byte[], string) HugeField(byte[] valid, Random random, int start, int end, string region)
    {
        var bytes = (byte[])valid.Clone();
        bool wide = random.Next(2) == 0 && end - start >= 8;
        int width = wide ? 8 : 4;
        int at = random.Next(start, Math.Max(start + 1, end - width + 1));
        ulong value = wide
            ? new ulong[] { ulong.MaxValue, long.MaxValue, 1UL << 42, 1UL << 62 }[random.Next(4)]
            : new ulong[] { uint.MaxValue, int.MaxValue, 1U << 31, 1U << 30 }[random.Next(4)];
        for (int b = 0; b < width && at + b < bytes.Length; b++)
            bytes[at + b] = (byte)(value >> (8 * b));
        return (bytes, $"{width}-byte field at {at} of the {region} set to {value}");
    }

    /// <summary>Random bytes over a random range, appended, or instead of the whole file.</summary>
    public static (byte[], string) Garbage(byte[] valid, Random random)
    {
        switch (random.Next(3))
        {
            case 0:
                var bytes = (byte[])valid.Clone();
                int start = random.Next(bytes.Length), length = Math.Min(random.Next(1, 65), bytes.Length - start);
                random.NextBytes(bytes.AsSpan(start, length));
                return (bytes, $"{length} random bytes at {start}");
            case 1:
                var tail = new byte[random.Next(1, 257)];
                random.NextBytes(tail);
                return ([.. valid, .. tail], $"{tail.Length} random bytes appended");
            default:
                var all = new byte[random.Next(1, 4096)];
                random.NextBytes(all);
                return (all, $"{all.Length} random bytes instead of the file");
        }
    }
}
