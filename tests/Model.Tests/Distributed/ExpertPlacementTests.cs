using Jetpack.Model.Distributed;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Tests.Distributed;

/// <summary>Placement by compute (issue 19): a core expert costs its hidden ratio over the universal one's (4 at the paper's ratios).</summary>
public class ExpertPlacementTests
{
    static MoeConfig Sphero(int core, int univ) => new() { Kind = MoeKind.Sphero, Layers = [0], CoreExperts = core, UniversalExperts = univ };

    [Fact]
    public void ACoreExpertCostsFourUniversalOnesAtThePapersRatios()
    {
        var moe = ModelRegistry.Get("v_jetmoe_t").Vit!.Moe!;
        Assert.Equal(4.0, ExpertPlacement.Cost(moe, new ExpertRange(0, 1, 0, 0)) / ExpertPlacement.Cost(moe, new ExpertRange(0, 0, 0, 1)));
        // and the ratio follows the config, not a constant
        var wide = moe with { UniversalHiddenRatio = 2 };
        Assert.Equal(2.0, ExpertPlacement.Cost(wide, new ExpertRange(0, 1, 0, 0)) / ExpertPlacement.Cost(wide, new ExpertRange(0, 0, 0, 1)));
    }

    /// <summary>The registry's counts and the scaling grid's, on 2–8 ranks: per-rank cost within 5 % of the mean; ranges contiguous and covering.</summary>
    [Theory]
    [InlineData(98, 196)]
    [InlineData(24, 48)]
    [InlineData(32, 64)]
    [InlineData(5, 7)]
    [InlineData(49, 98)]
    [InlineData(196, 392)]
    [InlineData(392, 784)]
    [InlineData(197, 0)]
    public void PerRankExpertFlopsAreWithinFivePercentOfTheMean(int core, int univ)
    {
        var moe = Sphero(core, univ);
        foreach (int g in new[] { 1, 2, 3, 4, 8 })
        {
            if (core < g) continue;                                           // ranks without a core expert: granularity, not placement, sets the spread
            var ranges = ExpertPlacement.Ranges(moe, g);
            int cs = 0, us = 0;
            foreach (var r in ranges)
            {
                Assert.Equal((cs, us), (r.CoreStart, r.UnivStart));
                cs += r.CoreCount; us += r.UnivCount;
            }
            Assert.Equal((core, univ), (cs, us));
            // "wherever the counts allow": no placement beats the rank holding ⌈core/G⌉ core experts, nor whole
            // universal experts (one unit); without universal experts a core expert's cost (4) is the step
            double mean = (4.0 * core + univ) / g;
            double bound = new[] { 0.05, (4.0 * Math.Ceiling((double)core / g) - mean) / mean, (univ == 0 ? 4.0 : 1.0) / mean }.Max();
            double imbalance = ExpertPlacement.Imbalance(moe, ranges);
            Assert.True(imbalance <= bound, $"{core}/{univ} on {g}: imbalance {imbalance:P1} (ranges {string.Join("; ", ranges)})");
        }
    }

    [Fact]
    public void UniversalExpertsLevelWhatEvenCountsLeaveUneven()
    {
        // 3 core + 6 universal on 2 ranks: an even split of both banks would cost 2·4+3 = 11 vs 1·4+3 = 7
        var ranges = ExpertPlacement.Ranges(Sphero(3, 6), 2);
        Assert.Equal([9.0, 9.0], ranges.Select(r => ExpertPlacement.Cost(Sphero(3, 6), r)).ToArray());
        Assert.Equal(new ExpertRange(0, 2, 0, 1), ranges[0]);
        Assert.Equal(new ExpertRange(2, 1, 1, 5), ranges[1]);
    }

    [Fact]
    public void LayoutsSplitTheWorldIntoGroupsAndReplicas()
    {
        var layout = new ParallelLayout(6, 3);
        Assert.Equal(2, layout.Replicas);
        Assert.Equal([3, 4, 5], layout.Group(4));
        Assert.Equal([1, 4], layout.Holders(4));
        Assert.Equal((1, 1), (layout.Position(4), layout.Replica(4)));
        var e = Assert.Throws<ArgumentException>(() => new ParallelLayout(4, 3));
        Assert.Contains("parallel.expert_parallel", e.Message);
        Assert.Equal(4, ParallelLayout.Of(4, null).ExpertParallel);
    }
}
