using Jetpack.Model.Models;

namespace Jetpack.Model.Distributed;

/// <summary>
/// Which experts of an MoE layer each of the G ranks of an expert group holds, balanced by compute
/// rather than by count (DESIGN.md "Parallel layout"). Every expert sees the same number of slots
/// (B·s per micro-batch), so its forward+backward FLOPs are proportional to its hidden width: a core
/// expert (hidden 4D at the paper's ratios, spec §3) costs <c>CoreHiddenRatio / UniversalHiddenRatio</c>
/// = 4 universal experts (hidden D). A rank's cost is therefore
/// <c>w_c · core count + w_u · universal count</c> with w = the hidden ratio.
///
/// The placement keeps each bank contiguous (a rank holds one row range of the core bank and one of
/// the universal bank, so a shard is a slice and checkpoints stay row ranges): the core experts are
/// split evenly (counts differ by at most one), then the universal experts fill the ranks up to a
/// common level (water-filling: ranks whose core cost is above the level get none), rounded to whole
/// experts by largest remainder. A function of (config, G) only, so every rank, the scatter and
/// checkpoint re-slicing compute the same ranges.
/// </summary>
public static class ExpertPlacement
{
    /// <summary>Relative cost of one core and one universal expert (their hidden ratios).</summary>
    public static (double Core, double Universal) Weights(MoeConfig config) =>
        (config.CoreHiddenRatio, config.UniversalHiddenRatio);

    /// <summary>The cost of the experts in <paramref name="range"/>, in units of a hidden-ratio-1 expert.</summary>
    public static double Cost(MoeConfig config, ExpertRange range)
    {
        var (wc, wu) = Weights(config);
        return wc * range.CoreCount + wu * range.UnivCount;
    }

    /// <summary>The ranges of all G ranks of a group, in position order.</summary>
    public static ExpertRange[] Ranges(MoeConfig config, int groupSize)
    {
        if (groupSize < 1) throw new ArgumentOutOfRangeException(nameof(groupSize), $"an expert group needs ≥ 1 rank, got {groupSize}");
        int g = groupSize;
        var core = new int[g];
        for (int r = 0; r < g; r++) core[r] = ExpertRange.Split(config.CoreExperts, g, r).Count;
        var univ = FillUniversal(config, core);
        var ranges = new ExpertRange[g];
        int cs = 0, us = 0;
        for (int r = 0; r < g; r++)
        {
            ranges[r] = new ExpertRange(cs, core[r], us, univ[r]);
            cs += core[r]; us += univ[r];
        }
        return ranges;
    }

    /// <summary>Universal counts that level the ranks' costs, given their core counts (water-filling, then largest remainder).</summary>
    private static int[] FillUniversal(MoeConfig config, int[] core)
    {
        int g = core.Length, eu = config.UniversalExperts;
        var (wc, wu) = Weights(config);
        if (eu == 0) return new int[g];
        if (wu <= 0) return Enumerable.Range(0, g).Select(r => ExpertRange.Split(eu, g, r).Count).ToArray();
        // level L with Σ_r max(0, L − wc·c_r) = wu·Eu: drop the ranks whose core cost is above the level, repeat
        var active = Enumerable.Range(0, g).ToHashSet();
        double level = 0;
        while (active.Count > 0)
        {
            level = (wu * eu + active.Sum(r => wc * core[r])) / active.Count;
            var above = active.Where(r => wc * core[r] > level).ToList();
            if (above.Count == 0) break;
            foreach (var r in above) active.Remove(r);
        }
        var want = Enumerable.Range(0, g).Select(r => active.Contains(r) ? (level - wc * core[r]) / wu : 0).ToArray();
        var univ = want.Select(w => (int)Math.Floor(w + 1e-9)).ToArray();
        int left = eu - univ.Sum();
        foreach (var r in Enumerable.Range(0, g).OrderByDescending(r => want[r] - univ[r]).ThenBy(r => r).Take(Math.Max(0, left)))
            univ[r]++;
        // rounding can never overshoot (floors sum to ≤ Eu); guard the sum anyway
        if (univ.Sum() != eu) throw new InvalidOperationException($"placement of {eu} universal experts over {g} ranks summed to {univ.Sum()}");
        return univ;
    }

    /// <summary>Largest relative deviation of a rank's cost from the mean (0 = perfectly balanced).</summary>
    public static double Imbalance(MoeConfig config, IReadOnlyList<ExpertRange> ranges)
    {
        var costs = ranges.Select(r => Cost(config, r)).ToArray();
        double mean = costs.Average();
        return mean == 0 ? 0 : costs.Max(c => Math.Abs(c - mean)) / mean;
    }

    /// <summary>
    /// The placement of every MoE config of <paramref name="spec"/> under <paramref name="layout"/>, one
    /// line each (layers of one config share it): per position its core and universal rows, its cost,
    /// and the largest deviation from the mean cost. For run metadata and <c>jetpack status</c>.
    /// </summary>
    public static string Describe(ModelSpec spec, ParallelLayout layout)
    {
        var lines = new List<string> { layout.ToString() };
        foreach (var group in spec.MoeLayers().GroupBy(l => l.Moe))
        {
            var m = group.Key;
            var ranges = Ranges(m, layout.ExpertParallel);
            var parts = ranges.Select((r, p) => $"{p}: core {r.CoreStart}–{r.CoreStart + r.CoreCount} univ {r.UnivStart}–{r.UnivStart + r.UnivCount} (cost {Cost(m, r):0.#})");
            lines.Add($"{m.Kind.ToString().ToLowerInvariant()} {m.CoreExperts}/{m.UniversalExperts} experts in {group.Count()} layer(s) ({group.First().Prefix}…): " +
                      $"{string.Join("; ", parts)}; max deviation from the mean cost {100 * Imbalance(m, ranges):0.0} %");
        }
        return string.Join("\n", lines);
    }
}
