using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Recycling;

/// <summary>
/// Index-generation strategies of checkpoint recycling (spec §5.3): for each expert, which `keep`
/// of a layer's `total` units (hidden units or channels) it inherits. Every method returns an
/// int64 tensor [experts, keep] whose rows are sorted ascending.
/// </summary>
public static class IndexSampler
{
    /// <summary>Importance-based: per expert, multinomial sampling without replacement with
    /// probabilities ∝ importance (one batched draw of all experts' rows).</summary>
    public static Tensor Importance(Tensor importance, int experts, int keep, Generator generator)
    {
        long total = importance.shape[0];
        Check(total, keep);
        using var scope = NewDisposeScope();
        var p = importance.to(ScalarType.Float64).clamp_min(0);
        if (p.sum().item<double>() <= 0) throw new ArgumentException("importance statistics are all zero: nothing to sample by");
        int nonzero = (int)p.gt(0).sum().item<long>();
        if (nonzero < keep)   // multinomial without replacement needs `keep` non-zero weights
            p = p + p.max() * 1e-12;
        var probs = (p / p.sum()).unsqueeze(0).expand(experts, total).contiguous();      // [e, total]
        var idx = torch.multinomial(probs, keep, replacement: false, generator: generator); // [e, keep]
        return idx.sort(-1).Values.MoveToOuterDisposeScope();
    }

    /// <summary>Random: an independent randperm(total)[:keep] per expert, sorted.</summary>
    public static Tensor Random(int total, int experts, int keep, Generator generator)
    {
        Check(total, keep);
        using var scope = NewDisposeScope();
        var rows = Enumerable.Range(0, experts).Select(_ => torch.randperm(total, generator: generator).narrow(0, 0, keep)).ToArray();
        return torch.stack(rows).sort(-1).Values.MoveToOuterDisposeScope();
    }

    /// <summary>Uniform: round(linspace(0, total−1, keep)), the same for every expert (so all experts are equal).</summary>
    public static Tensor Uniform(int total, int experts, int keep)
    {
        Check(total, keep);
        using var scope = NewDisposeScope();
        return Linspace(total, keep).unsqueeze(0).expand(experts, keep).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>round(linspace(0, total−1, keep)) as int64 (round half to even, as torch and numpy).</summary>
    public static Tensor Linspace(int total, int keep) =>
        torch.linspace(0, total - 1, keep, dtype: ScalarType.Float64).round().to(ScalarType.Int64);

    /// <summary>
    /// Graph partitioning (spec §5.3 "co_act"): given a partition of the units (part id per unit) and
    /// the co-activation matrix, each part weighs Σ_{i≠j ∈ part} C_ij; per expert, parts are drawn
    /// without replacement ∝ weight, their units concatenated in draw order, truncated to `keep`
    /// and sorted. The reference draws P/2+1 parts and truncates; drawing until `keep` units are in
    /// hand keeps the same units and also works when those parts are too small.
    /// </summary>
    public static Tensor Graph(int[] part, Tensor coActivation, int experts, int keep, Generator generator)
    {
        int total = part.Length;
        Check(total, keep);
        int parts = part.Max() + 1;
        var members = Enumerable.Range(0, parts).Select(p => Enumerable.Range(0, total).Where(i => part[i] == p).ToArray()).ToArray();
        using var scope = NewDisposeScope();
        var c = coActivation.to(ScalarType.Float64) * (1 - torch.eye(total, dtype: ScalarType.Float64)); // i ≠ j
        var weight = new double[parts];
        for (int p = 0; p < parts; p++)
        {
            if (members[p].Length < 2) continue;
            var idx = torch.tensor(members[p].Select(i => (long)i).ToArray());
            weight[p] = c.index_select(0, idx).index_select(1, idx).sum().item<double>();
        }
        var w = torch.tensor(weight);
        w = w.sum().item<double>() > 0 ? w + 1e-12 : torch.ones(parts, ScalarType.Float64); // every part drawable
        var rows = new long[experts * keep];
        for (int e = 0; e < experts; e++)
        {
            var order = torch.multinomial(w, parts, replacement: false, generator: generator).data<long>().ToArray();
            var chosen = new List<long>(keep + total / parts);
            for (int k = 0; k < order.Length && chosen.Count < keep; k++)
                chosen.AddRange(members[order[k]].Select(i => (long)i));
            chosen = chosen.Take(keep).Order().ToList();
            chosen.CopyTo(rows, e * keep);
        }
        return torch.tensor(rows, [experts, keep]).MoveToOuterDisposeScope();
    }

    static void Check(long total, int keep)
    {
        if (keep < 1 || keep > total) throw new ArgumentException($"cannot select {keep} of {total} units");
    }
}
