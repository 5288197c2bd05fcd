using Jetpack.Model.Recycling.Graph;
using TorchSharp;
using Xunit.Abstractions;

namespace Jetpack.Model.Tests.Recycling.Graph;

/// <summary>The co-activation graph of spec §5.3: counts as integer weights, diagonal and zeros dropped, symmetry enforced.</summary>
public sealed class CoActivationGraphTests(ITestOutputHelper output)
{
    [Fact]
    public void IntegerCountsBecomeTheWeightsExactly()
    {
        using var c = torch.tensor(new long[,]
        {
            { 9, 3, 0 },
            { 3, 7, 5 },
            { 0, 5, 1 },
        });
        var graph = CoActivationGraph.FromMatrix(c);

        Assert.Equal(3, graph.Nodes);
        Assert.Equal(new[] { 0, 1, 3, 4 }, graph.Xadj);        // diagonal and the zero 0–2 give no edge
        Assert.Equal(new[] { 1, 0, 2, 1 }, graph.Adjncy);
        Assert.Equal(new[] { 3, 3, 5, 5 }, graph.Adjwgt);
        Assert.Equal(1.0, graph.WeightScale);
        Assert.Equal(2, graph.EdgeCount);
    }

    [Fact]
    public void UnweightedOptionDropsTheCountsLikeTheReleasedCode()
    {
        using var c = torch.tensor(new long[,] { { 0, 3 }, { 3, 0 } });
        var graph = CoActivationGraph.FromMatrix(c, unweighted: true);
        Assert.Null(graph.Adjwgt);
        Assert.Equal(new[] { 1, 0 }, graph.Adjncy);
        Assert.True(double.IsNaN(graph.WeightScale));
    }

    /// <summary>Fractional values (e.g. counts averaged over batches) are scaled so all weights sum to the budget, then rounded.</summary>
    [Fact]
    public void FractionalValuesAreScaledToTheBudgetAndRounded()
    {
        using var c = torch.tensor(new float[,]
        {
            { 1f, 0.5f, 2.5f },
            { 0.5f, 0f, 1e-12f },
            { 2.5f, 1e-12f, 0f },
        });
        var graph = CoActivationGraph.FromMatrix(c);

        double total = 2 * (0.5 + 2.5 + 1e-12f);
        Assert.Equal(CoActivationGraph.WeightBudget / total, graph.WeightScale, 12);
        Assert.Equal(new[] { 1, 2, 0, 2, 0, 1 }, graph.Adjncy);
        int w05 = graph.Adjwgt![0], w25 = graph.Adjwgt[1], tiny = graph.Adjwgt[3];
        Assert.Equal(5.0, (double)w25 / w05, 6);
        Assert.Equal(1, tiny);                                     // positive stays an edge, weight at least 1
        Assert.InRange(graph.Adjwgt.Sum(x => (long)x), CoActivationGraph.WeightBudget - 4, CoActivationGraph.WeightBudget + 4);
    }

    [Fact]
    public void LargeIntegerCountsAreScaledDownToFitMetis()
    {
        using var c = torch.tensor(new long[,] { { 0, 1L << 40, 1L << 38 }, { 1L << 40, 0, 0 }, { 1L << 38, 0, 0 } });
        var graph = CoActivationGraph.FromMatrix(c);
        Assert.True(graph.WeightScale < 1);
        Assert.Equal(4.0, (double)graph.Adjwgt![0] / graph.Adjwgt[1], 6);
        Assert.InRange(graph.Adjwgt.Sum(x => (long)x), 1, CoActivationGraph.WeightBudget + 4);
    }

    [Fact]
    public void FloatingRoundingAsymmetryIsToleratedAndAveraged()
    {
        using var c = torch.tensor(new double[,] { { 0, 1000.00001 }, { 999.99999, 0 } });
        var graph = CoActivationGraph.FromMatrix(c);
        Assert.Equal(graph.Adjwgt![0], graph.Adjwgt[1]);
    }

    [Fact]
    public void BadMatricesAreRefused()
    {
        Assert.Contains("not symmetric: C[0,1] = 3, C[1,0] = 4",
            Refused(torch.tensor(new long[,] { { 0, 3 }, { 4, 0 } })));
        Assert.Contains("not symmetric", Refused(torch.tensor(new float[,] { { 0, 1f }, { 1.01f, 0 } })));
        Assert.Contains("non-negative", Refused(torch.tensor(new float[,] { { 0, -1f }, { -1f, 0 } })));
        Assert.Contains("finite", Refused(torch.tensor(new float[,] { { 0, float.NaN }, { float.NaN, 0 } })));
        Assert.Contains("square", Refused(torch.zeros(2, 3)));
        Assert.Contains("real numbers", Refused(torch.zeros(2, 2, dtype: torch.ScalarType.Bool)));
    }

    /// <summary>
    /// End to end at the real size (1536 hidden units, 32 parts, spec §5.3): activations with planted
    /// groups of co-firing units. METIS on the count-weighted graph recovers the groups; on the
    /// unweighted graph (almost every pair co-fires at least once, so it is nearly complete) it
    /// cannot: the released code's bug, measured.
    /// </summary>
    [Fact]
    public void PlantedGroupsAreRecoveredFromCoActivationCounts()
    {
        const int units = 1536, groups = 32, samples = 400;
        var generator = new torch.Generator(1234);
        // Each sample switches on a few groups (p = 0.1 each) plus background noise (p = 0.02 per unit).
        using var scope = torch.NewDisposeScope();
        var groupOf = torch.arange(units) % groups;                                     // [u]
        var groupOn = torch.rand(samples, groups, generator: generator) < 0.1;          // [s, g]
        var noise = torch.rand(samples, units, generator: generator) < 0.02;            // [s, u]
        var active = (groupOn.index_select(1, groupOf) | noise).to(torch.ScalarType.Float32); // [s, u]
        var coact = active.t().matmul(active);                                          // [u, u], whole counts

        var weighted = CoActivationGraph.FromMatrix(coact);
        var part = MetisPartitioner.PartGraphKway(weighted, groups, seed: 3407);

        var unweighted = CoActivationGraph.FromMatrix(coact, unweighted: true);
        var unweightedPart = MetisPartitioner.PartGraphKway(unweighted, groups, seed: 3407);

        var truth = groupOf.data<long>().ToArray();
        int pure = PureParts(part, truth, groups), unweightedPure = PureParts(unweightedPart, truth, groups);
        output.WriteLine($"{weighted.EdgeCount} of {units * (units - 1) / 2} pairs are edges, weight scale {weighted.WeightScale}; " +
            $"parts that are one planted group: weighted {pure} of {groups}, unweighted {unweightedPure}");
        Assert.Equal(groups, pure);
        Assert.InRange(Enumerable.Range(0, groups).Max(p => part.Count(x => x == p)), 48, 50); // 1536 / 32 = 48, METIS allows 3%
        Assert.True(unweightedPure < groups / 2, $"unweighted: {unweightedPure} pure parts");
    }

    private static int PureParts(int[] part, long[] truth, int parts) =>
        Enumerable.Range(0, parts).Count(p => Enumerable.Range(0, part.Length).Where(u => part[u] == p).Select(u => truth[u]).Distinct().Count() == 1);

    private static string Refused(torch.Tensor matrix)
    {
        using (matrix)
            return Assert.Throws<ArgumentException>(() => CoActivationGraph.FromMatrix(matrix)).Message;
    }
}
