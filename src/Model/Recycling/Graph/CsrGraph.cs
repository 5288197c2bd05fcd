namespace Jetpack.Model.Recycling.Graph;

/// <summary>
/// An undirected graph in METIS's compressed-row form: the neighbours of node i are
/// <c>Adjncy[Xadj[i] .. Xadj[i+1])</c>, with weights <c>Adjwgt</c> at the same positions (null:
/// every edge weighs 1). Every edge is stored in both directions with the same weight, as METIS
/// requires. The constructor validates all of it, so a graph that exists is one METIS accepts.
/// Arrays are not copied; do not modify them afterwards.
/// </summary>
public sealed class CsrGraph
{
    /// <summary>METIS sums edge weights in 32-bit idx_t (per node, per part, the cut); the total stays below this.</summary>
    public const long MaxTotalWeight = int.MaxValue;

    public CsrGraph(int nodes, int[] xadj, int[] adjncy, int[]? adjwgt, double weightScale = 1.0)
    {
        ArgumentNullException.ThrowIfNull(xadj);
        ArgumentNullException.ThrowIfNull(adjncy);
        if (nodes < 1)
            throw new ArgumentOutOfRangeException(nameof(nodes), $"a graph needs at least one node, got {nodes}");
        if (xadj.Length != nodes + 1)
            throw new ArgumentException($"xadj must have nodes + 1 = {nodes + 1} entries, got {xadj.Length}", nameof(xadj));
        if (xadj[0] != 0)
            throw new ArgumentException($"xadj[0] must be 0, got {xadj[0]}", nameof(xadj));
        for (int i = 0; i < nodes; i++)
        {
            if (xadj[i + 1] < xadj[i])
                throw new ArgumentException($"xadj must not decrease: xadj[{i}] = {xadj[i]} > xadj[{i + 1}] = {xadj[i + 1]}", nameof(xadj));
        }
        if (xadj[nodes] != adjncy.Length)
            throw new ArgumentException($"xadj[{nodes}] = {xadj[nodes]} must equal adjncy's length {adjncy.Length}", nameof(xadj));
        if (adjwgt is not null && adjwgt.Length != adjncy.Length)
            throw new ArgumentException($"adjwgt has {adjwgt.Length} entries, adjncy {adjncy.Length}", nameof(adjwgt));

        long total = 0;
        for (int e = 0; e < adjncy.Length; e++)
        {
            if ((uint)adjncy[e] >= (uint)nodes)
                throw new ArgumentException($"adjncy[{e}] = {adjncy[e]} is not a node (0..{nodes - 1})", nameof(adjncy));
            if (adjwgt is not null && adjwgt[e] < 1)
                throw new ArgumentException($"adjwgt[{e}] = {adjwgt[e]}: edge weights must be at least 1 (leave zero edges out)", nameof(adjwgt));
            total += adjwgt?[e] ?? 1;
        }
        if (total > MaxTotalWeight)
            throw new ArgumentException($"the edge weights sum to {total}, more than METIS's 32-bit idx_t holds ({MaxTotalWeight}); scale them down", nameof(adjwgt));

        CheckSymmetric(nodes, xadj, adjncy, adjwgt);
        Nodes = nodes;
        Xadj = xadj;
        Adjncy = adjncy;
        Adjwgt = adjwgt;
        WeightScale = weightScale;
    }

    public int Nodes { get; }
    public int[] Xadj { get; }
    public int[] Adjncy { get; }
    public int[]? Adjwgt { get; }

    /// <summary>Undirected edges (each is stored twice).</summary>
    public int EdgeCount => Adjncy.Length / 2;

    /// <summary>
    /// Integer weight = round(source value × WeightScale); see <see cref="CoActivationGraph"/>. 1 for
    /// a graph built by hand, NaN for an unweighted co-activation graph.
    /// </summary>
    public double WeightScale { get; }

    /// <summary>Total weight of the edges whose ends lie in different parts (each undirected edge once).</summary>
    public long EdgeCut(int[] part)
    {
        ArgumentNullException.ThrowIfNull(part);
        if (part.Length != Nodes)
            throw new ArgumentException($"part has {part.Length} entries for {Nodes} nodes", nameof(part));
        long cut = 0;
        for (int i = 0; i < Nodes; i++)
        {
            for (int e = Xadj[i]; e < Xadj[i + 1]; e++)
            {
                if (part[i] != part[Adjncy[e]]) cut += Adjwgt?[e] ?? 1;
            }
        }
        return cut / 2;
    }

    // No self-loops, no repeated neighbour, and j in i's row with weight w iff i in j's row with w.
    // Costs a sorted copy of every row: O(E log degree).
    private static void CheckSymmetric(int nodes, int[] xadj, int[] adjncy, int[]? adjwgt)
    {
        var sorted = (int[])adjncy.Clone();
        var weights = (int[]?)adjwgt?.Clone();
        for (int i = 0; i < nodes; i++)
        {
            int start = xadj[i], length = xadj[i + 1] - xadj[i];
            if (weights is null) Array.Sort(sorted, start, length);
            else Array.Sort(sorted, weights, start, length);
            for (int e = start; e < start + length; e++)
            {
                if (sorted[e] == i)
                    throw new ArgumentException($"node {i} has an edge to itself; METIS needs the diagonal left out", nameof(adjncy));
                if (e > start && sorted[e] == sorted[e - 1])
                    throw new ArgumentException($"node {i} lists neighbour {sorted[e]} twice", nameof(adjncy));
            }
        }
        for (int i = 0; i < nodes; i++)
        {
            for (int e = xadj[i]; e < xadj[i + 1]; e++)
            {
                int j = sorted[e];
                int back = Array.BinarySearch(sorted, xadj[j], xadj[j + 1] - xadj[j], i);
                if (back < 0)
                    throw new ArgumentException($"the adjacency is not symmetric: edge {i}→{j} has no {j}→{i}", nameof(adjncy));
                if (weights is not null && weights[back] != weights[e])
                    throw new ArgumentException(
                        $"the edge weights are not symmetric: {i}→{j} weighs {weights[e]}, {j}→{i} weighs {weights[back]}", nameof(adjwgt));
            }
        }
    }
}
