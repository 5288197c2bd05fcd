using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Jetpack.Model.Torch;
using static TorchSharp.torch;

namespace Jetpack.Model.Moe;

/// <summary>
/// The CPU forward of 1.5-entmax (spec §3.3) without a sort: per row, the threshold τ* is found by
/// iterating on the support instead of sorting it. With x = (z − max z)/2 and a candidate support S,
/// τ(S) = μ_S − √max(0, (1 − s_S)/|S|) is the closed form of §3.3 over S (μ the mean, s = |S|·variance);
/// the next support is {x_i &gt; τ(S)}. Starting from the entries above −1 (τ* ≥ −1 always), S only shrinks, each pass removing
/// entries the threshold has passed, and it stops when S holds exactly the entries above its own τ: that
/// is the k* of the sorted form, so τ* is the same number (sums in fp64 here, cumulative sums in the
/// tensor's dtype there). A row takes a handful of O(K) passes instead of an O(K log K) sort plus a
/// dozen K-wide tensor passes; rows are spread over the cores. A row whose support fails to shrink
/// within K passes, or grows (not seen; a guard), takes the sorted form. Non-finite rows propagate NaN like the
/// tensor path.
/// </summary>
public static unsafe class Entmax15Kernel
{
    /// <summary>Rows per work item.</summary>
    private const int RowsPerItem = 64;

    /// <summary>True where <see cref="Forward"/> applies: a contiguous fp32 CPU tensor.</summary>
    public static bool Applies(Tensor z) => RawTensor.Walkable(z, ScalarType.Float32) && z.shape[^1] > 0;

    /// <summary>p = entmax15(z) over the last dimension, into a new tensor of z's shape.</summary>
    public static Tensor Forward(Tensor z)
    {
        int k = checked((int)z.shape[^1]);
        long rows = z.numel() / k;
        var p = empty_like(z);
        float* src = (float*)RawTensor.Address(z), dst = (float*)RawTensor.Address(p);
        long items = (rows + RowsPerItem - 1) / RowsPerItem;
        int padded = (k + Lanes - 1) / Lanes * Lanes;
        Parallel.For(0L, items, item =>
        {
            Span<double> x = padded <= 2048 ? stackalloc double[padded] : new double[padded];
            long end = Math.Min(rows, (item + 1) * RowsPerItem);
            for (long r = item * RowsPerItem; r < end; r++) Row(src + r * k, dst + r * k, k, x);
        });
        return p;
    }

    /// <summary>Doubles per vector in the support passes (AVX2 and AVX-512 alike).</summary>
    private static int Lanes => Vector256<double>.Count;

    /// <summary>One row: z (K values) → p, with <paramref name="x"/> as scratch of K rounded up to whole vectors.</summary>
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
    /// τ* for the first <paramref name="k"/> entries of x (maximum 0; the rest −∞ padding): support
    /// iteration, with the sorted form as the guard. The first support is {x &gt; −1}: the top entry
    /// alone bounds τ* ≥ −1, so nothing at or below −1 is in the support.
    /// </summary>
    public static float Threshold(ReadOnlySpan<double> x, int k)
    {
        int support = int.MaxValue;
        double tau = -1;
        for (int pass = 0; pass <= k; pass++)
        {
            var (sum, sumSq, n) = SupportSums(x, tau);
            if (n == support) return (float)tau;                                // S stable: τ is τ*
            if (n > support) break;                                              // not shrinking: the guard
            support = n;
            tau = ClosedForm(sum, sumSq, n);
        }
        return SortedThreshold(x[..k]);
    }

    /// <summary>Σx, Σx² and the count over the entries above τ: branch-free, a vector of doubles at a time.</summary>
    private static (double Sum, double SumSq, int N) SupportSums(ReadOnlySpan<double> x, double tau)
    {
        var t = Vector256.Create(tau);
        Vector256<double> sum = default, sumSq = default;
        Vector256<long> n = default;
        ref double at = ref MemoryMarshal.GetReference(x);
        for (int i = 0; i < x.Length; i += Lanes)
        {
            var v = Vector256.LoadUnsafe(ref at, (nuint)i);
            var inS = Vector256.GreaterThan(v, t);
            var kept = v & inS;
            sum += kept;
            sumSq += kept * kept;
            n -= inS.AsInt64();
        }
        return (Vector256.Sum(sum), Vector256.Sum(sumSq), (int)Vector256.Sum(n));
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
