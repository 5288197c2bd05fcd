using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Models;

namespace Jetpack.Model.Recycling;

/// <summary>
/// What recycling chose for one MoE layer: the predecessor units each expert inherited (for the
/// report and cross-checks) and the successor keys it wrote.
/// </summary>
public sealed class LayerExperts : IDisposable
{
    public required string Layer { get; init; }                       // e.g. "blocks.6.mlp"
    /// <summary>Successor state-dict keys filled with recycled weights.</summary>
    public required IReadOnlyList<string> Keys { get; init; }
    /// <summary>Predecessor hidden units each expert sampled, [E, Hc] (core rows first).</summary>
    public required Tensor Hidden { get; init; }
    /// <summary>Positions u within a sampled set that a universal expert keeps (spec §5.5), [Hu]; null without universal experts.</summary>
    public Tensor? UniversalKeep { get; init; }
    /// <summary>Predecessor channels per expert [E, Dt] (core rows first).</summary>
    public required Tensor Channels { get; init; }
    /// <summary>Share of the layer's importance mass each expert's hidden / channel selection covers (null without statistics).</summary>
    public double[]? HiddenMass { get; init; }
    public double[]? ChannelMass { get; init; }

    public void Dispose()
    {
        Hidden.Dispose(); UniversalKeep?.Dispose(); Channels.Dispose();
    }
}

/// <summary>Extraction of expert weights into the successor's stacked expert tensors (spec §5.4, §5.5, §5.8).</summary>
public static class ExpertExtraction
{
    /// <summary>
    /// Spec §5.4: expert e with hidden set hₑ and channel set cₑ takes W₁[hₑ, cₑ], b₁[hₑ], W₂[cₑ, hₑ],
    /// b₂[cₑ] of the predecessor MLP; §5.5: core = experts 0..Ec−1; universal = the rest, keeping the
    /// hidden units at positions u = round(linspace(0, Hc−1, Hu)) of their sampled set.
    /// Writes straight into <paramref name="successor"/>'s tensors, expert by expert: no full-size
    /// intermediate (one big gather would materialise W₁[h] for all experts, 347 MB per V-JetMoE-T layer).
    /// Takes ownership of <paramref name="hidden"/> and <paramref name="channels"/>.
    /// </summary>
    public static LayerExperts FromPredecessor(string layer, MoeConfig moe, int dim, IReadOnlyDictionary<string, Tensor> pred,
                                               Tensor hidden /*[E, Hc]*/, Tensor channels /*[E, Dt]*/,
                                               IReadOnlyDictionary<string, Tensor> successor)
    {
        var w1 = pred[$"{layer}.fc1.weight"]; var b1 = pred[$"{layer}.fc1.bias"];     // [Hs, Ds], [Hs]
        var w2 = pred[$"{layer}.fc2.weight"]; var b2 = pred[$"{layer}.fc2.bias"];     // [Ds, Hs], [Ds]
        int ec = moe.CoreExperts, eu = moe.UniversalExperts;
        var core = Bank(successor, $"{layer}.{(moe.Kind == MoeKind.Soft ? "experts" : "core_experts")}");
        var univ = eu > 0 ? Bank(successor, $"{layer}.univ_experts") : null;
        var keep = eu > 0 ? IndexSampler.Linspace((int)hidden.shape[1], moe.UniversalHidden(dim)) : null;   // [Hu]
        using (no_grad())
            for (int e = 0; e < ec + eu; e++)
            {
                using var scope = NewDisposeScope();
                var (bank, k) = e < ec ? (core, e) : (univ!, e - ec);
                var h = e < ec ? hidden[e] : hidden[e].index_select(0, keep!);
                var c = channels[e];
                bank.W1[k].copy_(w1.index_select(0, h).index_select(1, c));                           // [H, Dt]
                bank.B1[k].copy_(b1.index_select(0, h));
                bank.W2[k].copy_(w2.index_select(0, c).index_select(1, h));                           // [Dt, H]
                bank.B2[k].copy_(b2.index_select(0, c));
            }
        return new LayerExperts
        {
            Layer = layer, Keys = [.. core.Keys, .. univ?.Keys ?? []],
            Hidden = hidden, UniversalKeep = keep, Channels = channels,
        };
    }

    /// <summary>Sparse Upcycling (spec §5.8): every core expert an exact copy of the target-width dense MLP.</summary>
    public static LayerExperts CopiesOfDense(string layer, MoeConfig moe, IReadOnlyDictionary<string, Tensor> target,
                                             IReadOnlyDictionary<string, Tensor> successor)
    {
        var core = Bank(successor, $"{layer}.{(moe.Kind == MoeKind.Soft ? "experts" : "core_experts")}");
        var w1 = target[$"{layer}.fc1.weight"];
        using (no_grad())
        {
            core.W1.copy_(w1.unsqueeze(0).expand_as(core.W1));
            core.B1.copy_(target[$"{layer}.fc1.bias"].unsqueeze(0).expand_as(core.B1));
            core.W2.copy_(target[$"{layer}.fc2.weight"].unsqueeze(0).expand_as(core.W2));
            core.B2.copy_(target[$"{layer}.fc2.bias"].unsqueeze(0).expand_as(core.B2));
        }
        long ec = moe.CoreExperts, h = w1.shape[0], d = w1.shape[1];
        return new LayerExperts
        {
            Layer = layer, Keys = core.Keys,
            Hidden = torch.arange(h).unsqueeze(0).expand(ec, h).contiguous(),
            Channels = torch.arange(d).unsqueeze(0).expand(ec, d).contiguous(),
        };
    }

    /// <summary>The four stacked tensors of one expert bank in the successor.</summary>
    sealed record ExpertBank(Tensor W1, Tensor B1, Tensor W2, Tensor B2, IReadOnlyList<string> Keys);

    static ExpertBank Bank(IReadOnlyDictionary<string, Tensor> successor, string prefix)
    {
        string[] keys = [$"{prefix}.vit_fc1.weight", $"{prefix}.vit_fc1.bias", $"{prefix}.vit_fc2.weight", $"{prefix}.vit_fc2.bias"];
        foreach (var k in keys)
            if (!successor.ContainsKey(k)) throw new InvalidOperationException($"the successor has no '{k}'");
        return new ExpertBank(successor[keys[0]], successor[keys[1]], successor[keys[2]], successor[keys[3]], keys);
    }

    /// <summary>Σ of the normalised importance over each row's selected units: [E] shares in [0, 1].</summary>
    public static double[] MassCovered(Tensor importance, Tensor selection)
    {
        using var scope = NewDisposeScope();
        var p = importance.to(ScalarType.Float64);
        p = p / p.sum();
        return p.index_select(0, selection.flatten()).view(selection.shape).sum(1).data<double>().ToArray();
    }
}
