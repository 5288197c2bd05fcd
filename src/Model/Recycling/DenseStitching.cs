using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Models;

namespace Jetpack.Model.Recycling;

/// <summary>Where each successor tensor came from.</summary>
public enum Provenance { Recycled, Target, Predecessor, Fresh }

/// <summary>
/// The non-expert weights of the successor. Released behaviour (spec §5.6): a key is copied
/// unchanged from the target-width checkpoint when it exists there with the same shape, else it
/// keeps its fresh init (Φ, slot norm, τ, fc_norm). The head is never reused (spec §11.3).
/// Paper-literal (spec §5.7): selected from the predecessor with a global channel set c, per-layer
/// hidden sets mₗ and attention sets aₗ.
/// </summary>
public static class DenseStitching
{
    public static bool IsHead(string key) => key.StartsWith("head.", StringComparison.Ordinal);

    /// <summary>Released rule: copy from the target when name and shape match (head excluded).</summary>
    public static Tensor? FromTarget(string key, Tensor fresh, IReadOnlyDictionary<string, Tensor> target) =>
        !IsHead(key) && target.TryGetValue(key, out var t) && t.shape.SequenceEqual(fresh.shape) ? t : null;

    /// <summary>Spec §5.7's selections for a ViT: c (global channels), per-layer mₗ (hidden) and aₗ (attention dims).</summary>
    public sealed class VitSelection
    {
        public required Tensor Channels { get; init; }
        public required Tensor[] Hidden { get; init; }
        public required Tensor[] Attention { get; init; }
    }

    public static VitSelection SelectVit(VitConfig successor, VitConfig predecessor, ActivationStats stats, ImportanceStat stat, Generator generator)
    {
        if (successor.Depth != predecessor.Depth)
            throw new ArgumentException($"paper-literal recycling needs equal depths (successor {successor.Depth}, predecessor {predecessor.Depth})");
        using var scope = NewDisposeScope();
        var total = torch.zeros(predecessor.Dim, ScalarType.Float64);
        for (int l = 0; l < predecessor.Depth; l++)
        {
            var imp = stats[$"blocks.{l}.norm2"].Importance(stat);
            total.add_(imp / imp.sum());
        }
        var channels = total.topk(successor.Dim).indexes.sort().Values;                      // Eq. 4: the same c for every layer
        var hidden = new Tensor[predecessor.Depth];
        var attention = new Tensor[predecessor.Depth];
        for (int l = 0; l < predecessor.Depth; l++)
        {
            hidden[l] = IndexSampler.Importance(stats[$"blocks.{l}.mlp.act"].Importance(stat), 1, successor.MlpHidden, generator)[0].MoveToOuterDisposeScope();
            attention[l] = IndexSampler.Importance(stats[$"blocks.{l}.attn.proj.input"].Importance(stat), 1, successor.Dim, generator)[0].MoveToOuterDisposeScope();
        }
        return new VitSelection { Channels = channels.MoveToOuterDisposeScope(), Hidden = hidden, Attention = attention };
    }

    /// <summary>The predecessor-derived tensor for a successor key (spec §5.7 table), or null to keep it fresh.</summary>
    public static Tensor? FromPredecessor(string key, IReadOnlyDictionary<string, Tensor> pred, VitSelection sel, long predDim)
    {
        if (IsHead(key) || !pred.TryGetValue(key, out var p)) return null;
        var c = sel.Channels;
        string[] parts = key.Split('.');
        switch (key)
        {
            case "cls_token" or "pos_embed" or "norm.weight" or "norm.bias" or "fc_norm.weight" or "fc_norm.bias":
                return p.index_select(p.dim() - 1, c);
            case "patch_embed.proj.weight" or "patch_embed.proj.bias":
                return p.index_select(0, c);
        }
        if (parts[0] != "blocks") return null;
        int l = int.Parse(parts[1]);
        string rest = string.Join('.', parts[2..]);
        var a = sel.Attention[l]; var m = sel.Hidden[l];
        return rest switch
        {
            "norm1.weight" or "norm1.bias" or "norm2.weight" or "norm2.bias" => p.index_select(0, c),
            "attn.qkv.weight" => p.index_select(0, QkvRows(a, predDim)).index_select(1, c),
            "attn.qkv.bias" => p.index_select(0, QkvRows(a, predDim)),
            "attn.proj.weight" => p.index_select(0, c).index_select(1, a),
            "attn.proj.bias" => p.index_select(0, c),
            "mlp.fc1.weight" => p.index_select(0, m).index_select(1, c),
            "mlp.fc1.bias" => p.index_select(0, m),
            "mlp.fc2.weight" => p.index_select(0, c).index_select(1, m),
            "mlp.fc2.bias" => p.index_select(0, c),
            _ => null,
        };
    }

    /// <summary>Rows {a, a + D, a + 2D} of the fused q/k/v projection.</summary>
    static Tensor QkvRows(Tensor a, long dim) => torch.cat([a, a + dim, a + 2 * dim]);
}
