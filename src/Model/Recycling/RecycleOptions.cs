using static TorchSharp.torch;

namespace Jetpack.Model.Recycling;

/// <summary>How expert weights are chosen from the predecessor (spec §5.3, §5.8; paper Table 3).</summary>
public enum RecycleMethod
{
    /// <summary>Multinomial sampling ∝ L2 activation norm (the paper's default).</summary>
    ImportanceL2,
    ImportanceL1,
    /// <summary>∝ count of positive activations ("act_patrn").</summary>
    ImportanceCount,
    Random,
    /// <summary>The same evenly spaced units for every expert.</summary>
    Uniform,
    /// <summary>Parts of a METIS partition of the co-activation graph (hidden units; channels by L2 importance).</summary>
    Graph,
    /// <summary>Every expert an exact copy of the target-width model's own dense MLP (Sparse Upcycling).</summary>
    SparseUpcycling,
}

/// <summary>Where the non-expert weights of the successor come from.</summary>
public enum DenseSource
{
    /// <summary>Copied unchanged from the target-width dense checkpoint (released code, spec §5.6).</summary>
    Target,
    /// <summary>Selected from the predecessor's weights (paper text, spec §5.7).</summary>
    Predecessor,
}

public sealed record RecycleOptions
{
    public RecycleMethod Method { get; init; } = RecycleMethod.ImportanceL2;
    public DenseSource DenseFrom { get; init; } = DenseSource.Target;
    /// <summary>The recycling script's seed (spec §5.10: 3407).</summary>
    public long Seed { get; init; } = 3407;
    /// <summary>Parts of the co-activation graph partition (spec §5.3: 32).</summary>
    public int GraphParts { get; init; } = 32;
    /// <summary>Graph partitioner: (co-activation [n, n], parts, seed) → part id per unit. The CLI passes METIS.</summary>
    public Func<Tensor, int, long, int[]>? Partitioner { get; init; }

    public ImportanceStat Statistic => Method switch
    {
        RecycleMethod.ImportanceL1 => ImportanceStat.L1,
        RecycleMethod.ImportanceCount => ImportanceStat.ActivationCount,
        _ => ImportanceStat.L2,
    };

    public bool NeedsStatistics => Method is RecycleMethod.ImportanceL2 or RecycleMethod.ImportanceL1
        or RecycleMethod.ImportanceCount or RecycleMethod.Graph || DenseFrom == DenseSource.Predecessor;

    /// <summary>CLI names: importance-l2, importance-l1, importance-count, random, uniform, graph, sparse-upcycling.</summary>
    public static RecycleMethod ParseMethod(string name) => name.ToLowerInvariant() switch
    {
        "importance" or "importance-l2" or "l2" => RecycleMethod.ImportanceL2,
        "importance-l1" or "l1" => RecycleMethod.ImportanceL1,
        "importance-count" or "act" or "activation-count" => RecycleMethod.ImportanceCount,
        "random" => RecycleMethod.Random,
        "uniform" => RecycleMethod.Uniform,
        "graph" or "co-act" => RecycleMethod.Graph,
        "sparse-upcycling" or "upcycling" or "copy" => RecycleMethod.SparseUpcycling,
        _ => throw new ArgumentException($"unknown recycling method '{name}' (known: importance-l2, importance-l1, importance-count, random, uniform, graph, sparse-upcycling)"),
    };

    public static string Name(RecycleMethod m) => m switch
    {
        RecycleMethod.ImportanceL2 => "importance-l2",
        RecycleMethod.ImportanceL1 => "importance-l1",
        RecycleMethod.ImportanceCount => "importance-count",
        RecycleMethod.Random => "random",
        RecycleMethod.Uniform => "uniform",
        RecycleMethod.Graph => "graph",
        _ => "sparse-upcycling",
    };
}
