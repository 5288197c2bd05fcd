using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Models;

namespace Jetpack.Model.Distributed;

/// <summary>Which expert bank of which MoE layer a state-dict key belongs to.</summary>
public readonly record struct ExpertKey(string Prefix, int Layer, MoeConfig Config, bool Universal)
{
    /// <summary>The rows (dim 0) of the full tensor that <paramref name="range"/> holds.</summary>
    public (int Start, int Count) Rows(ExpertRange range) =>
        Universal ? (range.UnivStart, range.UnivCount) : (range.CoreStart, range.CoreCount);
}

/// <summary>
/// The split of a model's state into expert-parallel parts: the stacked expert tensors of every
/// SpheroMoE layer (<c>{prefix}.core_experts.*</c>, <c>{prefix}.univ_experts.*</c>, experts on dim 0,
/// so a shard is a slice of rows), the one bank of every Soft MoE layer (<c>{prefix}.experts.*</c>,
/// placed as a core bank without universal experts) and everything else, replicated.
/// Also slices a full state dict for a rank and gathers rank slices into a full one (the
/// coordinator's scatter, tests).
/// </summary>
public static class ExpertKeys
{
    /// <summary>The expert bank a key belongs to, or null for a replicated key.</summary>
    public static ExpertKey? Classify(ModelSpec spec, string key)
    {
        int layer = 0;
        foreach (var (prefix, _, moe) in spec.MoeLayers())
        {
            if (moe.Kind == MoeKind.Sphero)
            {
                if (key.StartsWith(prefix + ".core_experts.", StringComparison.Ordinal)) return new ExpertKey(prefix, layer, moe, false);
                if (key.StartsWith(prefix + ".univ_experts.", StringComparison.Ordinal)) return new ExpertKey(prefix, layer, moe, true);
            }
            else if (moe.Kind == MoeKind.Soft && key.StartsWith(prefix + ".experts.", StringComparison.Ordinal))
                return new ExpertKey(prefix, layer, moe, false);
            layer++;
        }
        return null;
    }

    public static bool IsExpert(ModelSpec spec, string key) => Classify(spec, key) is not null;

    /// <summary>Rank <paramref name="rank"/>'s part of a full state dict: expert tensors narrowed (views), the rest as is.</summary>
    public static Dictionary<string, Tensor> Slice(ModelSpec spec, IReadOnlyDictionary<string, Tensor> full, int worldSize, int rank)
    {
        var part = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, t) in full)
        {
            if (Classify(spec, key) is { } ek)
            {
                var (start, count) = ek.Rows(ExpertRange.For(ek.Config, worldSize, rank));
                part[key] = t.narrow(0, start, count);
            }
            else part[key] = t;
        }
        return part;
    }

    /// <summary>The full state dict from every rank's part (rank order): expert tensors concatenated, the rest from rank 0.</summary>
    public static Dictionary<string, Tensor> Gather(ModelSpec spec, IReadOnlyList<IReadOnlyDictionary<string, Tensor>> parts)
    {
        var full = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, t) in parts[0])
            full[key] = Classify(spec, key) is null ? t : torch.cat(parts.Select(p => p[key]).ToArray(), 0);
        return full;
    }
}
