using Jetpack.Model.Recycling.Graph;

namespace Jetpack.Model.Tests.Recycling.Graph;

/// <summary>METIS through P/Invoke (Debian's libmetis5): structure found, weights honoured, seeds reproducible, bad input refused.</summary>
public sealed class MetisPartitionerTests
{
    [Fact]
    public void DebiansLibraryHas32BitIdx()
    {
        Assert.Equal(32, MetisNative.MeasuredIdxWidthBits);
    }

    [Fact]
    public void TwoCliquesJoinedByOneLightEdgeSplitIntoTheCliques()
    {
        var (xadj, adjncy, adjwgt) = new GraphBuilder(10)
            .Clique(Enumerable.Range(0, 5), weight: 10).Clique(Enumerable.Range(5, 5), weight: 10).Edge(4, 5, weight: 1).Csr();

        var part = MetisPartitioner.PartGraphKway(10, xadj, adjncy, adjwgt, parts: 2, seed: 0);

        Assert.All(part[..5], p => Assert.Equal(part[0], p));
        Assert.All(part[5..], p => Assert.Equal(part[5], p));
        Assert.NotEqual(part[0], part[5]);
        Assert.Equal(1, new CsrGraph(10, xadj, adjncy, adjwgt).EdgeCut(part));
    }

    [Fact]
    public void FourCliquesGiveFourParts()
    {
        var builder = new GraphBuilder(24);
        for (int c = 0; c < 4; c++)
        {
            builder.Clique(Enumerable.Range(6 * c, 6), weight: 5);
            builder.Edge(6 * c, (6 * c + 6) % 24, weight: 1); // a ring of light bridges
        }
        var part = MetisPartitioner.PartGraphKway(builder.Build(), parts: 4, seed: 1);

        var groups = Enumerable.Range(0, 4).Select(c => part.Skip(6 * c).Take(6).Distinct().ToArray()).ToArray();
        Assert.All(groups, g => Assert.Single(g));
        Assert.Equal(4, groups.Select(g => g[0]).Distinct().Count());
    }

    /// <summary>
    /// Two unit-weight 4-cliques A = {0..3}, B = {4..7}, joined by heavy edges 0–4 and 1–5 (weight
    /// 100). Unweighted, {A, B} is the best balanced split (2 edges cut). With the weights it costs
    /// 200, and the best split keeps both heavy edges inside a part (cut 6). The released code's
    /// unweighted graph (spec §5.3) would pick the first; the co-activation counts pick the second.
    /// Both optima are checked by enumerating all 35 balanced splits.
    /// </summary>
    [Fact]
    public void WeightsChangeThePartition()
    {
        var builder = new GraphBuilder(8).Clique([0, 1, 2, 3]).Clique([4, 5, 6, 7]).Edge(0, 4, 100).Edge(1, 5, 100);
        CsrGraph plain = builder.Build(weighted: false), weighted = builder.Build();

        var unweightedPart = MetisPartitioner.PartGraphKway(plain, parts: 2, seed: 0);
        var weightedPart = MetisPartitioner.PartGraphKway(weighted, parts: 2, seed: 0);

        Assert.Equal(SplitOf([0, 0, 0, 0, 1, 1, 1, 1]), SplitOf(unweightedPart));
        Assert.Equal(BestBalancedCut(plain), plain.EdgeCut(unweightedPart));
        Assert.Equal(200, weighted.EdgeCut(unweightedPart));
        Assert.Equal(BestBalancedCut(weighted), weighted.EdgeCut(weightedPart));
        Assert.Equal(6, weighted.EdgeCut(weightedPart));
        Assert.Equal(weightedPart[0], weightedPart[4]);
        Assert.Equal(weightedPart[1], weightedPart[5]);
    }

    /// <summary>
    /// A 30 × 30 grid has many near-optimal partitions, so the seed matters there (a graph with a
    /// clear optimum, like the cliques above, gives the same answer for every seed).
    /// </summary>
    [Fact]
    public void SameSeedSamePartition()
    {
        var graph = Grid(30);
        var first = MetisPartitioner.PartGraphKway(graph, parts: 8, seed: 7);
        var again = MetisPartitioner.PartGraphKway(graph, parts: 8, seed: 7);
        Assert.Equal(first, again);
        Assert.Equal(8, first.Distinct().Count());

        // The seed reaches METIS: other seeds give other partitions of this graph.
        Assert.Contains(Enumerable.Range(2, 4), s => !MetisPartitioner.PartGraphKway(graph, parts: 8, seed: s).SequenceEqual(first));
    }

    [Fact]
    public void ConcurrentCallsGiveTheSequentialResults()
    {
        var graph = Grid(30);
        var sequential = Enumerable.Range(0, 6).Select(s => MetisPartitioner.PartGraphKway(graph, parts: 8, seed: s)).ToArray();
        var concurrent = new int[6][];
        Parallel.For(0, 6, new ParallelOptions { MaxDegreeOfParallelism = 3 },
            s => concurrent[s] = MetisPartitioner.PartGraphKway(graph, parts: 8, seed: s));
        Assert.Equal(sequential, concurrent);
    }

    [Fact]
    public void OnePartAndEdgelessGraphsWork()
    {
        var graph = new GraphBuilder(5).Clique([0, 1, 2]).Build();
        Assert.Equal(new int[5], MetisPartitioner.PartGraphKway(graph, parts: 1, seed: 0));
        var edgeless = MetisPartitioner.PartGraphKway(4, [0, 0, 0, 0, 0], [], null, parts: 2, seed: 0);
        Assert.Equal(2, edgeless.Count(p => p == 0));
    }

    [Fact]
    public void BadInputIsRefusedWithTheReason()
    {
        var (xadj, adjncy, adjwgt) = new GraphBuilder(4).Clique([0, 1, 2]).Edge(2, 3).Csr();

        Assert.Contains("nodes + 1 = 5", Refused(() => MetisPartitioner.PartGraphKway(4, xadj[..^1], adjncy, adjwgt, 2, 0)));
        Assert.Contains("parts must be at least 1", Assert.Throws<ArgumentOutOfRangeException>(
            () => MetisPartitioner.PartGraphKway(4, xadj, adjncy, adjwgt, 0, 0)).Message);
        Assert.Contains("4 nodes into 5", Assert.Throws<ArgumentOutOfRangeException>(
            () => MetisPartitioner.PartGraphKway(4, xadj, adjncy, adjwgt, 5, 0)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => MetisPartitioner.PartGraphKway(4, xadj, adjncy, adjwgt, 2, -1));

        // 3→2 dropped from 3's row: 2→3 has no way back.
        Assert.Contains("not symmetric: edge 2→3 has no 3→2",
            Refused(() => MetisPartitioner.PartGraphKway(4, [0, 2, 4, 7, 7], adjncy[..^1], adjwgt[..^1], 2, 0)));
        var heavier = (int[])adjwgt.Clone();
        heavier[0] = 5;
        Assert.Contains("weights are not symmetric", Refused(() => MetisPartitioner.PartGraphKway(4, xadj, adjncy, heavier, 2, 0)));
        var zero = (int[])adjwgt.Clone();
        zero[0] = 0;
        Assert.Contains("at least 1", Refused(() => MetisPartitioner.PartGraphKway(4, xadj, adjncy, zero, 2, 0)));
        Assert.Contains("to itself", Refused(() => MetisPartitioner.PartGraphKway(2, [0, 1, 2], [0, 1], null, 2, 0)));
        Assert.Contains("is not a node", Refused(() => MetisPartitioner.PartGraphKway(2, [0, 1, 2], [1, 2], null, 2, 0)));
        Assert.Contains("twice", Refused(() => MetisPartitioner.PartGraphKway(2, [0, 2, 4], [1, 1, 0, 0], null, 2, 0)));
        Assert.Contains("must not decrease", Refused(() => MetisPartitioner.PartGraphKway(2, [0, 2, 1], [1, 0], null, 2, 0)));
    }

    [Fact]
    public void StatusCodesHaveTheirMeaning()
    {
        var error = new MetisException(-2, "METIS_PartGraphKway");
        Assert.Equal(-2, error.Status);
        Assert.Contains("METIS_ERROR_INPUT (-2): erroneous inputs", error.Message);
        Assert.Contains("insufficient memory", new MetisException(-3, "x").Message);
    }

    private static string Refused(Action call) => Assert.Throws<ArgumentException>(call).Message;

    // Partitions are equal up to renaming the parts: compare the set of node groups.
    private static string SplitOf(int[] part) =>
        string.Join(" | ", Enumerable.Range(0, part.Length).GroupBy(i => part[i]).Select(g => string.Join(",", g)).Order(StringComparer.Ordinal));

    private static long BestBalancedCut(CsrGraph graph)
    {
        long best = long.MaxValue;
        for (int mask = 0; mask < 1 << graph.Nodes; mask++)
        {
            if (int.PopCount(mask) != graph.Nodes / 2 || (mask & 1) == 0) continue;
            var part = Enumerable.Range(0, graph.Nodes).Select(i => (mask >> i) & 1).ToArray();
            best = Math.Min(best, graph.EdgeCut(part));
        }
        return best;
    }

    private static CsrGraph Grid(int side)
    {
        var builder = new GraphBuilder(side * side);
        for (int r = 0; r < side; r++)
        {
            for (int c = 0; c < side; c++)
            {
                if (c + 1 < side) builder.Edge(r * side + c, r * side + c + 1);
                if (r + 1 < side) builder.Edge(r * side + c, (r + 1) * side + c);
            }
        }
        return builder.Build(weighted: false);
    }
}
