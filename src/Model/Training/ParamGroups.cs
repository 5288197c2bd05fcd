using System.Text.RegularExpressions;
using Jetpack.Model.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Training;

/// <summary>How one parameter is optimised: its layer id, lr multiplier and weight decay.</summary>
public sealed record ParamRule(string Name, int LayerId, double LrScale, double WeightDecay);

/// <summary>
/// Parameter groups with layer-wise lr decay and weight-decay rules, spec §7.2 (the released
/// IN-1k config, mmpretrain's layer-decay constructor with the MoE model's depth rule).
///
/// Layer id (ViT, depth L): cls_token, pos_embed, patch_embed.* → 0; blocks.i.* → i + 1;
/// everything else (fc_norm/norm, head) → L + 1. Exception: every name containing phi, scale,
/// scales, slot or experts, and norm2 of the MoE blocks (it only feeds the MoE), → L + 1.
/// The lr multiplier is decay^(L + 1 − id): with 0.6 and L = 12, patch/cls/pos ×0.6¹³ and MoE ×1.
///
/// Layer id (ConvNeXt, our rule — the reference released none, spec §6.3): stem.* → 0; blocks are
/// numbered globally across stages, stages.s.blocks.i → 1 + (blocks before stage s) + i; a
/// stage's downsample shares the id of the stage's first block (it runs right before it); head.*
/// → total blocks + 1. The MoE exception matches the ViT's: phi/scale/slot/experts names and the
/// MoE blocks' own norm (ConvNeXt's norm before the MLP, the analogue of norm2) → ×1.
///
/// Weight decay, in order (first match wins):
/// 1. names containing "slot" (slot_norm γ/β) → wd: the reference's custom key overrides the norm rule;
/// 2. names containing "scale" (SpheroMoE scales.{0,1}, Soft MoE scale) → 0;
/// 3. pos_embed → 0;
/// 4. names ending in ".bias" → 0 (expert biases, though 2-D, included);
/// 5. other parameters with ≤ 1 dimension (LayerNorm γ, layer-scale γ) → 0;
/// 6. everything else → wd: weight matrices, conv kernels, experts, Φ and cls_token (3-D, so it
///    decays: the quirk spec §7.2 documents).
/// The MoE blocks' norm2 gets the ×1 lr but still no decay: its exception comes from the depth
/// rule, not from a custom key, so the norm rule stands (spec §7.2 lists only slot_norm as overridden).
/// </summary>
public static partial class ParamGroups
{
    static readonly string[] MoeNameKeys = ["phi", "scale", "slot", "experts"];   // "scale" also matches "scales"

    /// <summary>Groups of parameters sharing (lr multiplier, weight decay), in ascending layer id; frozen parameters are left out.</summary>
    public static IReadOnlyList<ParamGroup> Build(ModelSpec spec, nn.Module model, TrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        var rules = Describe(spec, model.named_parameters().Where(p => p.parameter.requires_grad)
            .Select(p => (p.name, p.parameter.shape)), options).ToDictionary(r => r.Name);
        return model.named_parameters()
            .Where(p => p.parameter.requires_grad)
            .GroupBy(p => (rules[p.name].LayerId, rules[p.name].WeightDecay))
            .OrderBy(g => g.Key.LayerId).ThenBy(g => g.Key.WeightDecay)
            .Select(g => new ParamGroup($"layer{g.Key.LayerId}_wd{g.Key.WeightDecay:g}",
                g.Select(p => p.parameter).ToList(), rules[g.First().name].LrScale, g.Key.WeightDecay))
            .ToList();
    }

    /// <summary>The rule for each named parameter (name and shape), in the order given.</summary>
    public static IEnumerable<ParamRule> Describe(ModelSpec spec, IEnumerable<(string Name, long[] Shape)> parameters, TrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(options);
        if (options.LayerDecay is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(options), $"layer decay must be in (0, 1], got {options.LayerDecay}");
        if (options.WeightDecay < 0) throw new ArgumentOutOfRangeException(nameof(options), $"weight decay must be ≥ 0, got {options.WeightDecay}");
        int top = TopLayerId(spec);
        foreach (var (name, shape) in parameters)
        {
            int id = LayerId(spec, name);
            yield return new ParamRule(name, id, Math.Pow(options.LayerDecay, top - id), WeightDecayOf(name, shape, options.WeightDecay));
        }
    }

    /// <summary>depth + 1 (ViT) or total blocks + 1 (ConvNeXt): the id of the head, lr ×1.</summary>
    public static int TopLayerId(ModelSpec spec) =>
        spec.Vit is { } v ? v.Depth + 1
        : spec.ConvNeXt is { } c ? c.Depths.Sum() + 1
        : throw new ArgumentException($"variant '{spec.Variant}' has no architecture config");

    /// <summary>The layer id of a parameter name (see the class summary).</summary>
    public static int LayerId(ModelSpec spec, string name)
    {
        int top = TopLayerId(spec);
        if (MoeNameKeys.Any(name.Contains)) return top;
        if (spec.Vit is { } v)
        {
            if (name is "cls_token" or "pos_embed" || name.StartsWith("patch_embed.", StringComparison.Ordinal)) return 0;
            var m = VitBlock().Match(name);
            if (!m.Success) return top;
            int block = int.Parse(m.Groups[1].Value);
            bool moe = v.Moe?.Layers.Contains(block) == true;
            return moe && m.Groups[2].Value == "norm2" ? top : block + 1;
        }
        var c = spec.ConvNeXt!;
        if (name.StartsWith("stem.", StringComparison.Ordinal)) return 0;
        var s = ConvNeXtStage().Match(name);
        if (!s.Success) return top;
        int stage = int.Parse(s.Groups[1].Value);
        int before = c.Depths.Take(stage).Sum();
        if (s.Groups[2].Value == "downsample") return before + 1;
        int i = int.Parse(s.Groups[3].Value);
        bool moeBlock = c.StageMoe[stage]?.Layers.Contains(i) == true;
        return moeBlock && s.Groups[4].Value == "norm" ? top : before + i + 1;
    }

    /// <summary>The weight decay of a parameter (see the class summary for the rule order).</summary>
    public static double WeightDecayOf(string name, long[] shape, double weightDecay)
    {
        if (name.Contains("slot")) return weightDecay;
        if (name.Contains("scale")) return 0;
        if (name == "pos_embed") return 0;
        if (name.EndsWith(".bias", StringComparison.Ordinal)) return 0;
        if (shape.Length <= 1) return 0;
        return weightDecay;
    }

    [GeneratedRegex(@"^blocks\.(\d+)\.([^.]+)")]
    private static partial Regex VitBlock();

    [GeneratedRegex(@"^stages\.(\d+)\.(downsample|blocks)(?:\.(\d+)\.([^.]+))?")]
    private static partial Regex ConvNeXtStage();
}
