using Jetpack.Model.Recycling.Graph;

namespace Jetpack.Model.Tests.Recycling.Graph;

/// <summary>Builds small weighted undirected graphs edge by edge, for partitioner tests.</summary>
public sealed class GraphBuilder(int nodes)
{
    private readonly SortedDictionary<int, int>[] _rows = [.. Enumerable.Range(0, nodes).Select(_ => new SortedDictionary<int, int>())];

    public GraphBuilder Edge(int a, int b, int weight = 1)
    {
        _rows[a][b] = weight;
        _rows[b][a] = weight;
        return this;
    }

    /// <summary>Joins every pair of <paramref name="members"/>.</summary>
    public GraphBuilder Clique(IEnumerable<int> members, int weight = 1)
    {
        var list = members.ToArray();
        for (int i = 0; i < list.Length; i++)
            for (int j = i + 1; j < list.Length; j++)
                Edge(list[i], list[j], weight);
        return this;
    }

    public (int[] Xadj, int[] Adjncy, int[] Adjwgt) Csr()
    {
        var xadj = new int[nodes + 1];
        var adjncy = new List<int>();
        var adjwgt = new List<int>();
        for (int i = 0; i < nodes; i++)
        {
            foreach (var (j, w) in _rows[i])
            {
                adjncy.Add(j);
                adjwgt.Add(w);
            }
            xadj[i + 1] = adjncy.Count;
        }
        return (xadj, [.. adjncy], [.. adjwgt]);
    }

    public CsrGraph Build(bool weighted = true)
    {
        var (xadj, adjncy, adjwgt) = Csr();
        return new CsrGraph(nodes, xadj, adjncy, weighted ? adjwgt : null);
    }
}
