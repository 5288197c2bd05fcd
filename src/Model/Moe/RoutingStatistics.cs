using static TorchSharp.torch;

namespace Jetpack.Model.Moe;

/// <summary>
/// Cheap per-layer routing statistics of one SpheroMoE forward (DESIGN.md "Telemetry": slot-load
/// statistics), plain numbers so that telemetry lives outside src/Model. Dispatch weights are a
/// softmax over tokens (spec §3.2 step 5), so every slot receives a dispatch mass of exactly 1 per
/// image; the load that can be unequal is on the token side: a token's dispatch mass
/// m[b, n] = Σ_j D[b, n, j] is how much of the slots' input it supplies. <see cref="DispatchMassMean"/>
/// is j/n by construction (a reference line); <see cref="DispatchMassMax"/> above it shows tokens that
/// dominate many slots. <see cref="CombineEntropy"/> is the mean over tokens of −Σ_j C log C (nats):
/// low = a token reads few slots (1.5-entmax gives exact zeros, 0·log 0 = 0).
///
/// Per-expert load (issue 19): expert e's share of the combine mass, L[e] = Σ_{b,n,s} C[b, n, e, s] / Σ C —
/// how much of the layer's output the tokens read from it (Σ_e L[e] = 1; balanced = 1/E). It is kept as
/// one array per layer and leaves the process only as a bounded summary (a histogram of E·L[e] and the
/// top-k busiest expert ids), never as a metric label per expert.
/// </summary>
public sealed record RoutingStatistics(int Layer, double DispatchMassMax, double DispatchMassMean, double CombineEntropy)
{
    /// <summary>L[e] per expert (core experts first), or empty when not collected.</summary>
    public IReadOnlyList<double> ExpertLoad { get; init; } = [];

    /// <summary>Tokens (b·n) the statistics are over: the weight of this forward when ranks' statistics are merged (<see cref="Merge"/>).</summary>
    public long Tokens { get; init; }

    /// <summary>From dispatch and combine weights [b, n, j], j = e·s; runs under no_grad (a few reductions, one device sync per value and one copy of E numbers).</summary>
    public static RoutingStatistics Of(int layer, Tensor dispatch, Tensor combine, int slotsPerExpert = 1)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var mass = dispatch.detach().sum(-1);                                               // [b, n]
        var c = combine.detach();
        var entropy = -(c * c.clamp_min(1e-30).log()).sum(-1);                              // [b, n]; 0·log 0 → 0
        long j = c.shape[^1];
        var perExpert = c.reshape(-1, j / slotsPerExpert, slotsPerExpert).sum([0, 2]).to_type(ScalarType.Float64); // [e]
        var load = (perExpert / perExpert.sum().clamp_min(1e-30)).cpu();                     // [e], Σ = 1
        return new RoutingStatistics(layer, mass.max().to_type(ScalarType.Float64).item<double>(), mass.mean().to_type(ScalarType.Float64).item<double>(), entropy.mean().to_type(ScalarType.Float64).item<double>())
        {
            ExpertLoad = load.data<double>().ToArray(), Tokens = c.shape[0] * c.shape[1],
        };
    }

    /// <summary>
    /// The statistics of the whole global micro-batch from every rank's statistics of its slice, through one
    /// sum over ranks (<paramref name="allReduceSum"/>: every rank passes the same-length vector and gets the
    /// elementwise sum). Exact because every token's combine weights sum to 1 (the layer's combine mass is its
    /// token count): L[e] and the means are token-weighted sums; the dispatch-mass maximum travels in a
    /// one-hot slot per rank. Costs one collective of Σ_layers (E + 3 + world) fp32 numbers (the reducer's
    /// dtype: shares agree with one process to ~1e-7 relative). Every rank must pass its layers in the same order.
    /// </summary>
    public static IReadOnlyList<RoutingStatistics> Merge(IReadOnlyList<RoutingStatistics> local, int rank, int world, Action<float[]> allReduceSum)
    {
        int length = local.Sum(s => s.ExpertLoad.Count + 3) + local.Count * world;
        var v = new float[length];
        int at = 0;
        foreach (var s in local)
        {
            foreach (double l in s.ExpertLoad) v[at++] = (float)(l * s.Tokens);
            v[at++] = (float)(s.CombineEntropy * s.Tokens);
            v[at++] = (float)(s.DispatchMassMean * s.Tokens);
            v[at++] = s.Tokens;
            v[at + rank] = (float)s.DispatchMassMax;
            at += world;
        }
        allReduceSum(v);
        var merged = new List<RoutingStatistics>(local.Count);
        at = 0;
        foreach (var s in local)
        {
            int e = s.ExpertLoad.Count;
            double tokens = v[at + e + 2], massSum = 0;
            var load = new double[e];
            for (int i = 0; i < e; i++) massSum += load[i] = v[at + i];
            for (int i = 0; i < e; i++) load[i] /= Math.Max(massSum, 1e-30);
            double max = Enumerable.Range(0, world).Max(r => (double)v[at + e + 3 + r]);
            merged.Add(new RoutingStatistics(s.Layer, max, v[at + e + 1] / Math.Max(tokens, 1), v[at + e] / Math.Max(tokens, 1))
            {
                ExpertLoad = load, Tokens = (long)Math.Round(tokens),
            });
            at += e + 3 + world;
        }
        return merged;
    }

    /// <summary>The <paramref name="k"/> busiest experts: (expert id, load share), busiest first (ties: lower id first).</summary>
    public IReadOnlyList<(int Expert, double Share)> TopExperts(int k) =>
        ExpertLoad.Select((share, e) => (Expert: e, Share: share)).OrderByDescending(x => x.Share).ThenBy(x => x.Expert).Take(k).ToList();

    /// <summary>The busiest expert's share of the combine mass (1/E when balanced).</summary>
    public double MaxLoadShare => ExpertLoad.Count == 0 ? 0 : ExpertLoad.Max();

    /// <summary>Entropy of the load distribution over experts, divided by log E: 1 = perfectly balanced, 0 = one expert takes all.</summary>
    public double LoadBalance => ExpertLoad.Count <= 1 ? 1 : -ExpertLoad.Where(x => x > 0).Sum(x => x * Math.Log(x)) / Math.Log(ExpertLoad.Count);
}
