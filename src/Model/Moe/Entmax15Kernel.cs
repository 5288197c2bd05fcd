using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Jetpack.Model.Torch;
using Jetpack.Model.Training;
using static TorchSharp.torch;

namespace Jetpack.Model.Moe;

/// <summary>
/// The CPU forward of 1.5-entmax (spec §3.3) without a sort: per row, the threshold τ* is found by
/// Newton steps from below on f(τ) = Σ max(0, x − τ)² = 1 (x = (z − max z)/2), each ending with the
/// closed form of §3.3 over the current support, which is exact once the support is the true one
/// (<see cref="Threshold"/>). The result is the sorted form's τ* (sums in fp64 here, cumulative sums in
/// the tensor's dtype there). A row takes a few O(K) vector passes instead of an O(K log K) sort plus a
/// dozen K-wide tensor passes; rows are spread over the cores. fp32 and bf16 (solved in fp32). Non-finite rows propagate NaN like the
/// tensor path.
/// </summary>
public static unsafe class Entmax15Kernel
{
    /// <summary>Rows per work item.</summary>
    private const int RowsPerItem = 64;

    /// <summary>True where <see cref="Forward"/> applies: a contiguous fp32 or bf16 CPU tensor.</summary>
    public static bool Applies(Tensor z) =>
        (RawTensor.Walkable(z, ScalarType.Float32) || RawTensor.Walkable(z, ScalarType.BFloat16)) && z.shape[^1] > 0;

    /// <summary>
    /// p = entmax15(z) over the last dimension, into a new tensor of z's shape and dtype. bf16 rows are
    /// widened to fp32, solved as fp32 rows, and p rounded back to bf16 (to nearest even).
    /// </summary>
    public static Tensor Forward(Tensor z)
    {
        int k = checked((int)z.shape[^1]);
        long rows = z.numel() / k;
        var p = empty_like(z);
        bool bf16 = z.dtype == ScalarType.BFloat16;
        void* src = RawTensor.Address(z), dst = RawTensor.Address(p);
        long items = (rows + RowsPerItem - 1) / RowsPerItem;
        int padded = (k + Lanes - 1) / Lanes * Lanes;
        Parallel.For(0L, items, item =>
        {
            long from = item * RowsPerItem, to = Math.Min(rows, (item + 1) * RowsPerItem);
            if (bf16) RowsBf16((ushort*)src, (ushort*)dst, k, from, to, padded);
            else Rows((float*)src, (float*)dst, k, from, to, padded);
        });
        return p;
    }

    // The kernels are compiled fully optimised at once (AggressiveOptimization): tier-0 code of these
    // vector loops runs ~10× slower, and a training step would meet it for its first seconds.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows(float* src, float* dst, int k, long from, long to, int padded)
    {
        Span<double> x = padded <= 2048 ? stackalloc double[padded] : new double[padded];
        for (long r = from; r < to; r++) Row(src + r * k, dst + r * k, k, x);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowsBf16(ushort* src, ushort* dst, int k, long from, long to, int padded)
    {
        Span<double> x = padded <= 2048 ? stackalloc double[padded] : new double[padded];
        var wide = k <= 2048 ? stackalloc float[2 * k] : new float[2 * k];
        fixed (float* z = wide)
        {
            float* p = z + k;
            for (long r = from; r < to; r++)
            {
                ushort* zr = src + r * k, pr = dst + r * k;
                for (int i = 0; i < k; i++) z[i] = BitConverter.Int32BitsToSingle(zr[i] << 16);
                Row(z, p, k, x);
                for (int i = 0; i < k; i++) pr[i] = AdamWKernel.ToBf16(p[i]);
            }
        }
    }

    /// <summary>Doubles per vector in the support passes (AVX2 and AVX-512 alike).</summary>
    private static int Lanes => Vector256<double>.Count;

    /// <summary>One row: z (K values) → p, with <paramref name="x"/> as scratch of K rounded up to whole vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row(float* z, float* p, int k, Span<double> x)
    {
        float max = float.NegativeInfinity;
        bool nan = false;
        for (int i = 0; i < k; i++) { if (float.IsNaN(z[i])) nan = true; else if (z[i] > max) max = z[i]; }
        if (nan || !float.IsFinite(max))
        {
            new Span<float>(p, k).Fill(float.NaN);
            return;
        }
        for (int i = 0; i < k; i++) x[i] = (z[i] - max) / 2;                  // as the tensor path: fp32 (z − max)/2
        x[k..].Fill(double.NegativeInfinity);                                  // padding is never in the support

        float tau = Threshold(x, k);
        for (int i = 0; i < k; i++)
        {
            float d = MathF.Max((float)x[i] - tau, 0);
            p[i] = d * d;
        }
    }

    /// <summary>
    /// τ* for the first <paramref name="k"/> entries of x (maximum 0; the rest −∞ padding). With
    /// f(τ) = Σ max(0, x − τ)², convex and decreasing, τ* solves f(τ*) = 1, and τ* ≥ −1 (the top entry alone
    /// gives f(−1) ≥ 1). From τ = −1, Newton steps on f stay at or below τ* and rise to it. At each τ ≤ τ*
    /// the support S = {x &gt; τ} holds every entry of the true support, so the closed form r over S is at
    /// or above τ* (fewer terms at τ* on the true support); r is τ* exactly when no entry of S lies below r.
    /// That test ends the search, usually in 1–4 passes. Past K passes (ties exactly at τ*) the sorted form decides.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Threshold(ReadOnlySpan<double> x, int k)
    {
        double tau = -1;
        for (int pass = 0; pass <= k; pass++)
        {
            var (sum, sumSq, n, min) = SupportSums(x, tau);
            double f = sumSq - 2 * tau * sum + n * tau * tau;                  // f(τ) over S = {x > τ}
            if (f >= 1)                                                          // τ ≤ τ*: S covers the support
            {
                double mean = sum / n, ss = sumSq - n * mean * mean, disc = (1 - ss) / n;
                if (disc >= 0 && mean - Math.Sqrt(disc) <= min) return (float)(mean - Math.Sqrt(disc));
            }
            double slope = 2 * (sum - n * tau);                                  // −f′(τ)
            double next = tau + (f - 1) / slope;
            if (!(next != tau) || n == 0) break;                                 // no progress (or NaN): the guard
            tau = next;
        }
        return SortedThreshold(x[..k]);
    }

    /// <summary>Σx, Σx², the count and the least entry over the entries above τ: branch-free, a vector of doubles at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (double Sum, double SumSq, int N, double Min) SupportSums(ReadOnlySpan<double> x, double tau)
    {
        var t = Vector256.Create(tau);
        var inf = Vector256.Create(double.PositiveInfinity);
        Vector256<double> sum = default, sumSq = default, min = inf;
        Vector256<long> n = default;
        ref double at = ref MemoryMarshal.GetReference(x);
        for (int i = 0; i < x.Length; i += Lanes)
        {
            var v = Vector256.LoadUnsafe(ref at, (nuint)i);
            var inS = Vector256.GreaterThan(v, t);
            var kept = v & inS;
            sum += kept;
            sumSq += kept * kept;
            min = Vector256.Min(min, Vector256.ConditionalSelect(inS, v, inf));
            n -= inS.AsInt64();
        }
        double least = double.PositiveInfinity;
        for (int j = 0; j < Lanes; j++) least = Math.Min(least, min[j]);
        return (Vector256.Sum(sum), Vector256.Sum(sumSq), (int)Vector256.Sum(n), least);
    }

    /// <summary>τ over a support of n entries with Σx and Σx² (spec §3.3 step 3).</summary>
    private static double ClosedForm(double sum, double sumSq, int n)
    {
        double mean = sum / n;
        double ss = n * (sumSq / n - mean * mean);
        return mean - Math.Sqrt(Math.Max(0, (1 - ss) / n));
    }

    /// <summary>The sorted form of §3.3 steps 2–4, for the guard.</summary>
    private static float SortedThreshold(ReadOnlySpan<double> x)
    {
        var sorted = x.ToArray();
        Array.Sort(sorted, (a, b) => b.CompareTo(a));
        double sum = 0, sumSq = 0, tauStar = 0;
        for (int j = 0; j < sorted.Length; j++)
        {
            sum += sorted[j]; sumSq += sorted[j] * sorted[j];
            double tau = ClosedForm(sum, sumSq, j + 1);
            if (tau <= sorted[j]) tauStar = tau;                                 // k* counts these; the last one holds
        }
        return (float)tauStar;
    }
}
