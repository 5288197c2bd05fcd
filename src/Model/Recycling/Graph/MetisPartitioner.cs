namespace Jetpack.Model.Recycling.Graph;

/// <summary>
/// k-way graph partitioning with METIS (Karypis and Kumar), the partitioner of the graph
/// (co_act) index strategy, spec §5.3: minimise the total weight of cut edges, parts balanced in
/// node count (METIS's default 3% imbalance). Needs Debian's libmetis5.
/// <para>
/// Reproducible: the options are METIS's defaults plus METIS_OPTION_SEED, and every call re-seeds
/// the generator, so the same graph, parts and seed give the same partition. Debian's build draws
/// from glibc's process-wide <c>rand()</c> (libmetis.so.5 imports rand and srand), so two calls
/// running at once would interleave one random stream and lose that: calls are serialised here
/// (a test shows parallel calls then equal sequential ones). Other native code calling rand()
/// during a partition would still perturb it; nothing in Jetpack does.
/// </para>
/// </summary>
public static class MetisPartitioner
{
    private static readonly object NativeLock = new();

    /// <summary>
    /// Partitions the graph given in CSR form (see <see cref="CsrGraph"/>) into
    /// <paramref name="parts"/> parts; returns each node's part in 0..parts-1.
    /// </summary>
    /// <param name="adjwgt">Integer edge weights ≥ 1, aligned with <paramref name="adjncy"/>; null: all 1.</param>
    /// <param name="seed">METIS's random seed, ≥ 0 (METIS would read −1 as "its default, 4321").</param>
    public static int[] PartGraphKway(int nodes, int[] xadj, int[] adjncy, int[]? adjwgt, int parts, int seed) =>
        PartGraphKway(new CsrGraph(nodes, xadj, adjncy, adjwgt), parts, seed);

    /// <summary>
    /// Partitions <paramref name="graph"/> into <paramref name="parts"/> parts; returns each node's
    /// part. METIS aims at node counts within 3% of equal, but on tiny or disconnected
    /// graphs parts can come back empty (a 2 × 2 grid into 4 parts gave two parts of two nodes).
    /// </summary>
    public static unsafe int[] PartGraphKway(CsrGraph graph, int parts, int seed)
    {
        ArgumentNullException.ThrowIfNull(graph);
        if (parts < 1)
            throw new ArgumentOutOfRangeException(nameof(parts), $"parts must be at least 1, got {parts}");
        if (parts > graph.Nodes)
            throw new ArgumentOutOfRangeException(nameof(parts), $"cannot split {graph.Nodes} nodes into {parts} non-empty parts");
        ArgumentOutOfRangeException.ThrowIfNegative(seed);
        var part = new int[graph.Nodes];
        // Debian's METIS 5.1.0 dies of SIGFPE (an integer division by zero) in PartGraphKway with
        // nparts = 1, taking the process with it; the answer is trivial anyway.
        if (parts == 1) return part;

        int nvtxs = graph.Nodes, ncon = 1, nparts = parts, edgecut = 0, status;
        var options = new int[MetisNative.NOptions];
        // fixed on an empty array gives a null pointer; an edgeless graph still gets valid ones.
        var adjncy = graph.Adjncy.Length > 0 ? graph.Adjncy : [0];
        var adjwgt = graph.Adjwgt is { Length: 0 } ? [1] : graph.Adjwgt;
        lock (NativeLock)
        {
            try
            {
                MetisNative.CheckIdxWidth();
                fixed (int* opt = options)
                {
                    status = MetisNative.SetDefaultOptions(opt);
                    if (status != MetisNative.Ok) throw new MetisException(status, "METIS_SetDefaultOptions");
                    opt[MetisNative.OptionSeed] = seed;
                    opt[MetisNative.OptionNumbering] = 0;
                    fixed (int* xadjP = graph.Xadj, adjncyP = adjncy, adjwgtP = adjwgt, partP = part)
                    {
                        status = MetisNative.PartGraphKway(&nvtxs, &ncon, xadjP, adjncyP, null, null, adjwgtP,
                            &nparts, null, null, opt, &edgecut, partP);
                    }
                }
            }
            catch (DllNotFoundException e)
            {
                throw new DllNotFoundException(
                    $"METIS is missing: {MetisNative.Library} could not be loaded; install libmetis5 (apt-get install libmetis5)", e);
            }
        }
        if (status != MetisNative.Ok)
            throw new MetisException(status, $"METIS_PartGraphKway ({graph.Nodes} nodes, {graph.EdgeCount} edges, {parts} parts)");

        // A cheap check of the binding itself: METIS's own edge cut must be the one of the partition it returned.
        long cut = graph.EdgeCut(part);
        if (cut != edgecut || part.Any(p => (uint)p >= (uint)parts))
            throw new InvalidOperationException(
                $"METIS returned an inconsistent partition (its edge cut {edgecut}, recomputed {cut}): {MetisNative.Library} does not match these bindings");
        return part;
    }
}
