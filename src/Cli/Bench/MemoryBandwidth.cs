using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Jetpack.Cli.Bench;

/// <summary>
/// A STREAM-like measure of this machine's memory bandwidth from C# (issue 21): copy (c ← a, 8 bytes
/// per element) and triad (a ← b + s·c, 12 bytes per element) over 128 MB arrays, far beyond the
/// caches, with the same threading as the fused optimizer (Parallel.For over 64 K-element chunks,
/// Vector512). The optimizer's parameter-proportional work is bounded by these numbers.
/// </summary>
public static unsafe class MemoryBandwidth
{
    public readonly record struct Result(double CopyGBps, double TriadGBps);

    /// <summary>Median of <paramref name="repeats"/> passes of each kernel over arrays of <paramref name="elements"/> floats.</summary>
    public static Result Measure(long elements = 32L << 20, int repeats = 7)
    {
        nuint bytes = (nuint)(elements * sizeof(float));
        float* a = (float*)NativeMemory.AlignedAlloc(bytes, 64), b = (float*)NativeMemory.AlignedAlloc(bytes, 64), c = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        try
        {
            const long chunk = 1 << 16;
            int chunks = (int)((elements + chunk - 1) / chunk);
            Parallel.For(0, chunks, i =>                                   // first touch in parallel, as the kernels will
            {
                long at = i * chunk, n = Math.Min(chunk, elements - at);
                new Span<float>(a + at, (int)n).Fill(1); new Span<float>(b + at, (int)n).Fill(2); new Span<float>(c + at, (int)n).Fill(3);
            });
            var copy = new List<double>(); var triad = new List<double>();
            for (int r = 0; r < repeats; r++)
            {
                var sw = Stopwatch.StartNew();
                Parallel.For(0, chunks, i =>
                {
                    long at = i * chunk, n = Math.Min(chunk, elements - at);
                    new Span<float>(a + at, (int)n).CopyTo(new Span<float>(c + at, (int)n));
                });
                copy.Add(8.0 * elements / sw.Elapsed.TotalSeconds / 1e9);
                sw.Restart();
                Parallel.For(0, chunks, i =>
                {
                    long at = i * chunk, n = Math.Min(chunk, elements - at), j = 0;
                    var s = Vector512.Create(3f);
                    for (; j + 16 <= n; j += 16) (Vector512.Load(b + at + j) + s * Vector512.Load(c + at + j)).Store(a + at + j);
                    for (; j < n; j++) a[at + j] = b[at + j] + 3f * c[at + j];
                });
                triad.Add(12.0 * elements / sw.Elapsed.TotalSeconds / 1e9);
            }
            return new Result(BenchCommand.Median(copy), BenchCommand.Median(triad));
        }
        finally
        {
            NativeMemory.AlignedFree(a); NativeMemory.AlignedFree(b); NativeMemory.AlignedFree(c);
        }
    }
}
