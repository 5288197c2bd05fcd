using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Models;

namespace Jetpack.Model.Recycling;

/// <summary>
/// The experts of one MoE layer as recycled: stacked weights under the successor's key names and
/// the predecessor units each expert inherited (for the report and cross-checks).
/// </summary>
public sealed class LayerExperts : IDisposable
{
    public required string Layer { get; init; }                       // e.g. "blocks.6.mlp"
    public required Dictionary<string, Tensor> Weights { get; init; } // successor key → tensor
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
        foreach (var t in Weights.Values) t.Dispose();
        Hidden.Dispose(); UniversalKeep?.Dispose(); Channels.Dispose();
    }
}

/// <summary>Selection and extraction of expert weights (spec §5.3–5.5, §5.8).</summary>
public static class ExpertExtraction
{
    /// <summary>
    /// Spec §5.4: expert e with hidden set hₑ and channel set cₑ takes W₁[hₑ, cₑ], b₁[hₑ], W₂[cₑ, hₑ],
    /// b₂[cₑ] of the predecessor MLP; §5.5: core = experts 0..Ec−1; universal = the rest with their
    /// hidden units sub-sampled at u = round(linspace(0, Hc−1, Hu)).
    /// </summary>
    public static LayerExperts FromPredecessor(string layer, MoeConfig moe, int dim, IReadOnlyDictionary<string, Tensor> pred,
                                               Tensor hidden /*[E, Hc]*/, Tensor channels /*[E, Dt]*/)
    {
        using var scope = NewDisposeScope();
        var w1 = pred[$"{layer}.fc1.weight"]; var b1 = pred[$"{layer}.fc1.bias"];     // [Hs, Ds], [Hs]
        var w2 = pred[$"{layer}.fc2.weight"]; var b2 = pred[$"{layer}.fc2.bias"];     // [Ds, Hs], [Ds]
        long e = hidden.shape[0], hc = hidden.shape[1], dt = channels.shape[1];
        // Per expert: two index_selects straight into a preallocated stack. One big gather over all
        // experts would first materialise W1[h] for every expert ([E·Hc, Ds], 347 MB per V-JetMoE-T layer).
        var W1 = torch.empty([e, hc, dt], w1.dtype, w1.device);
        var B1 = torch.empty([e, hc], b1.dtype, b1.device);
        var W2 = torch.empty([e, dt, hc], w2.dtype, w2.device);
        var B2 = torch.empty([e, dt], b2.dtype, b2.device);
        for (long i = 0; i < e; i++)
        {
            using var inner = NewDisposeScope();
            var h = hidden[i]; var c = channels[i];
            W1[i].copy_(w1.index_select(0, h).index_select(1, c));                                      // [Hc, Dt]
            B1[i].copy_(b1.index_select(0, h));
            W2[i].copy_(w2.index_select(0, c).index_select(1, h));                                      // [Dt, Hc]
            B2[i].copy_(b2.index_select(0, c));
        }

        var weights = new Dictionary<string, Tensor>();
        int ec = moe.CoreExperts, eu = moe.UniversalExperts;
        string core = moe.Kind == MoeKind.Soft ? "experts" : "core_experts";
        Put(weights, $"{layer}.{core}", W1.narrow(0, 0, ec), B1.narrow(0, 0, ec), W2.narrow(0, 0, ec), B2.narrow(0, 0, ec));
        Tensor? keep = null;
        if (eu > 0)
        {
            var u = IndexSampler.Linspace((int)hc, moe.UniversalHidden(dim));                           // [Hu]
            keep = u.MoveToOuterDisposeScope();
            var uw1 = W1.narrow(0, ec, eu).index_select(1, u);                                          // [Eu, Hu, Dt]
            var ub1 = B1.narrow(0, ec, eu).index_select(1, u);                                          // [Eu, Hu]
            var uw2 = W2.narrow(0, ec, eu).index_select(2, u);                                          // [Eu, Dt, Hu]
            Put(weights, $"{layer}.univ_experts", uw1, ub1, uw2, B2.narrow(0, ec, eu));
        }
        foreach (var t in weights.Values) t.MoveToOuterDisposeScope();
        return new LayerExperts
        {
            Layer = layer, Weights = weights, Hidden = hidden.contiguous().MoveToOuterDisposeScope(),
            UniversalKeep = keep, Channels = channels.contiguous().MoveToOuterDisposeScope(),
        };
    }

    /// <summary>Sparse Upcycling (spec §5.8): every core expert an exact copy of the target-width dense MLP.</summary>
    public static LayerExperts CopiesOfDense(string layer, MoeConfig moe, IReadOnlyDictionary<string, Tensor> target)
    {
        using var scope = NewDisposeScope();
        var w1 = target[$"{layer}.fc1.weight"]; var w2 = target[$"{layer}.fc2.weight"];
        long ec = moe.CoreExperts, h = w1.shape[0], d = w1.shape[1];
        Tensor Copies(Tensor t) => t.unsqueeze(0).expand([ec, .. t.shape]).contiguous();
        var weights = new Dictionary<string, Tensor>();
        Put(weights, $"{layer}.{(moe.Kind == MoeKind.Soft ? "experts" : "core_experts")}",
            Copies(w1), Copies(target[$"{layer}.fc1.bias"]), Copies(w2), Copies(target[$"{layer}.fc2.bias"]));
        foreach (var t in weights.Values) t.MoveToOuterDisposeScope();
        return new LayerExperts
        {
            Layer = layer, Weights = weights,
            Hidden = torch.arange(h).unsqueeze(0).expand(ec, h).contiguous().MoveToOuterDisposeScope(),
            Channels = torch.arange(d).unsqueeze(0).expand(ec, d).contiguous().MoveToOuterDisposeScope(),
        };
    }

    static void Put(Dictionary<string, Tensor> into, string prefix, Tensor w1, Tensor b1, Tensor w2, Tensor b2)
    {
        into[$"{prefix}.vit_fc1.weight"] = w1.contiguous();
        into[$"{prefix}.vit_fc1.bias"] = b1.contiguous();
        into[$"{prefix}.vit_fc2.weight"] = w2.contiguous();
        into[$"{prefix}.vit_fc2.bias"] = b2.contiguous();
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
