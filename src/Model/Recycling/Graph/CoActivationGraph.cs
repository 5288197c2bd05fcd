using System.Runtime.InteropServices;
using TorchSharp;

namespace Jetpack.Model.Recycling.Graph;

/// <summary>
/// The graph of the co_act index strategy (spec §5.3, step 1): node j is hidden unit j, and units
/// j ≠ k are joined by an edge weighing C_jk, the number of times both were active
/// (§5.2, C_jk = Σ 𝟙[a_j&gt;0]𝟙[a_k&gt;0]). The diagonal is ignored and zero entries give no edge.
/// <para>
/// The released code hands pymetis the adjacency without weights, so the counts are ignored: a
/// bug we do not reproduce by default (<c>unweighted: true</c> reproduces it for parity).
/// </para>
/// </summary>
public static class CoActivationGraph
{
    /// <summary>
    /// Budget for the sum of all integer weights (both directions): METIS adds weights in 32-bit
    /// idx_t, and half of int.MaxValue leaves headroom for its gain arithmetic.
    /// </summary>
    public const long WeightBudget = 1L << 30;

    /// <summary>Relative tolerance for the symmetry of a floating-point matrix (reduction order can break exact symmetry).</summary>
    public const double SymmetryTolerance = 1e-4;

    /// <summary>
    /// Builds the CSR graph of the symmetric, non-negative [n, n] matrix <paramref name="coact"/>
    /// (any integer or floating dtype, any device; copied to the CPU as float64).
    /// <para>
    /// Weights: when every off-diagonal entry is a whole number and they sum to at most
    /// <see cref="WeightBudget"/>, the weights are the entries themselves (<see cref="CsrGraph.WeightScale"/> 1).
    /// Otherwise (fractional values, e.g. counts averaged over batches, or very large counts) every
    /// entry is multiplied by s = budget / sum and rounded to the nearest integer, at least 1 for a
    /// positive entry, and s is reported as WeightScale. METIS minimises the cut's weight, which
    /// scaling leaves unchanged up to the rounding (relative 1/(2·w) per edge of weight w).
    /// </para>
    /// A floating matrix counts as symmetric when |C_jk − C_kj| ≤ 1e-4 · max(|C_jk|, |C_kj|); the
    /// graph then uses (C_jk + C_kj) / 2. An integer matrix must be exactly symmetric.
    /// </summary>
    /// <param name="unweighted">Leave the weights out (every edge 1): the released code's behaviour.</param>
    public static CsrGraph FromMatrix(torch.Tensor coact, bool unweighted = false)
    {
        ArgumentNullException.ThrowIfNull(coact);
        if (coact.dim() != 2 || coact.shape[0] != coact.shape[1] || coact.shape[0] < 1)
            throw new ArgumentException($"the co-activation matrix must be square [n, n], got [{string.Join(", ", coact.shape)}]", nameof(coact));
        if (coact.is_complex() || coact.dtype == torch.ScalarType.Bool)
            throw new ArgumentException($"the co-activation matrix must hold real numbers, got {coact.dtype}", nameof(coact));
        if (coact.shape[0] > int.MaxValue / 2)
            throw new ArgumentException($"{coact.shape[0]} nodes is more than METIS indexes", nameof(coact));
        int n = (int)coact.shape[0];
        bool floating = coact.is_floating_point();

        double[] c;
        using (var dense = coact.to(torch.ScalarType.Float64).cpu().contiguous())    // [n, n], one copy
            c = MemoryMarshal.Cast<byte, double>(dense.bytes).ToArray();

        // Symmetrise (checking) and collect the off-diagonal total.
        double total = 0;
        bool whole = true;
        for (int j = 0; j < n; j++)
        {
            c[j * n + j] = 0;
            for (int k = j + 1; k < n; k++)
            {
                double a = c[j * n + k], b = c[k * n + j];
                if (!double.IsFinite(a) || !double.IsFinite(b) || a < 0 || b < 0)
                    throw new ArgumentException($"co-activation entries must be finite and non-negative: C[{j},{k}] = {a}, C[{k},{j}] = {b}", nameof(coact));
                if (a != b && (!floating || Math.Abs(a - b) > SymmetryTolerance * Math.Max(a, b)))
                    throw new ArgumentException($"the co-activation matrix is not symmetric: C[{j},{k}] = {a}, C[{k},{j}] = {b}", nameof(coact));
                double v = floating ? (a + b) / 2 : a;
                c[j * n + k] = c[k * n + j] = v;
                total += 2 * v;
                whole &= v == Math.Floor(v);
            }
        }

        double scale = whole && total <= WeightBudget ? 1.0 : WeightBudget / total;
        var xadj = new int[n + 1];
        var adjncy = new List<int>();
        var adjwgt = unweighted ? null : new List<int>();
        for (int j = 0; j < n; j++)
        {
            for (int k = 0; k < n; k++)
            {
                double v = c[j * n + k];
                if (v <= 0) continue;
                adjncy.Add(k);
                adjwgt?.Add((int)Math.Max(1, Math.Round(v * scale, MidpointRounding.ToEven)));
            }
            xadj[j + 1] = adjncy.Count;
        }
        return new CsrGraph(n, xadj, [.. adjncy], adjwgt?.ToArray(), unweighted ? double.NaN : scale);
    }
}
