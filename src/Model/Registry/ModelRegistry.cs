using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Distributed;
using Jetpack.Model.Models;

namespace Jetpack.Model.Registry;

/// <summary>
/// Every named model variant. Tests iterate this table, so a new variant is tested by the
/// existing tests. Sizes and MoE placements follow spec §2, §4, §6.
/// </summary>
public static partial class ModelRegistry
{
    static readonly int[] Layers7To12 = [6, 7, 8, 9, 10, 11];

    // Spec §3 defaults: SpheroMoE, 98 core (4D) + 196 universal (D) experts, 1 slot each.
    static MoeConfig Sphero(int core, int univ, params int[] layers) =>
        new() { Kind = MoeKind.Sphero, Layers = layers, CoreExperts = core, UniversalExperts = univ };

    // Spec §4: 197 full-size experts (hidden 4D), 1 slot each, L2 + scale routing, no noise (assumption).
    static MoeConfig Soft(int experts, params int[] layers) =>
        new() { Kind = MoeKind.Soft, Layers = layers, CoreExperts = experts, UniversalExperts = 0 };

    static readonly VitConfig VitTiny = new() { Dim = 192, Depth = 12, Heads = 3 };
    static readonly VitConfig VitSmall = new() { Dim = 384, Depth = 12, Heads = 6 };
    // The MoE successors pool by average → fc_norm (spec §2), with drop path 0.1.
    static readonly VitConfig JetTiny = VitTiny with { Pool = PoolKind.Avg, DropPathRate = 0.1 };
    static readonly VitConfig JetSmall = VitSmall with { Pool = PoolKind.Avg, DropPathRate = 0.1 };

    // Fashion-MNIST scale (28×28×1, patch 4 → 49 patches + cls): a ViT-S-like predecessor of width
    // 128 and a ViT-T-like target of width 64 (ratio ½, as ViT-S → ViT-T), MoE in the last half.
    static readonly VitConfig Fm = new() { ImageSize = 28, PatchSize = 4, InChannels = 1, NumClasses = 10, Depth = 6, Pool = PoolKind.Avg };
    static readonly VitConfig FmPred = Fm with { Dim = 128, Heads = 4 };
    static readonly VitConfig FmTarget = Fm with { Dim = 64, Heads = 2 };

    /// <summary>Table 4's MoE-layer axis (the last N blocks) and expert axis (core experts; universal = 2×). Declared before
    /// <c>Table</c>: static fields initialise in text order.</summary>
    public static readonly int[] Table4Layers = [2, 4, 6], Table4CoreExperts = [6, 12, 24];

    static readonly (string Name, string About, ModelSpec Spec)[] Table =
    [
        V("vit_tiny_patch16_224", "timm ViT-Ti/16 (dense, token pooling)", VitTiny),
        V("vit_small_patch16_224", "timm ViT-S/16 (dense, token pooling)", VitSmall),
        V("v_jetmoe_t", "V-JetMoE-T: ViT-T, SpheroMoE in 7:12, 98/196 experts (265.4M)", JetTiny with { Moe = Sphero(98, 196, Layers7To12) }),
        V("v_jetmoe_t_l11_12", "V-JetMoE-T, MoE in 11:12 (Table 4, 92.3M)", JetTiny with { Moe = Sphero(98, 196, 10, 11) }),
        V("v_jetmoe_t_l9_12", "V-JetMoE-T, MoE in 9:12 (Table 4, 178.8M)", JetTiny with { Moe = Sphero(98, 196, 8, 9, 10, 11) }),
        V("v_jetmoe_t_l5_12", "V-JetMoE-T, MoE in 5:12 (Table 4, 352.0M)", JetTiny with { Moe = Sphero(98, 196, 4, 5, 6, 7, 8, 9, 10, 11) }),
        V("v_jetmoe_t_e32_64", "V-JetMoE-T, 32/64 experts (Table 4, 89.3M)", JetTiny with { Moe = Sphero(32, 64, Layers7To12) }),
        V("v_jetmoe_t_e64_128", "V-JetMoE-T, 64/128 experts (Table 4, 174.7M)", JetTiny with { Moe = Sphero(64, 128, Layers7To12) }),
        // Sparse Upcycling baseline (spec §5.8, issue #2 of the reference): 197 core experts, each a
        // copy of ViT-T's MLP, no universal experts, SpheroMoE routing "for fairness".
        V("v_jetmoe_t_upcycle", "V-JetMoE-T for Sparse Upcycling: 197 core experts (hidden 4D), no universal", JetTiny with { Moe = Sphero(197, 0, Layers7To12) }),
        V("v_jetmoe_s", "V-JetMoE-S: ViT-S width, 98/196 experts (1058.1M)", JetSmall with { Moe = Sphero(98, 196, Layers7To12) }),
        V("soft_moe_t", "Soft MoE-T baseline: 197 full-size experts in 7:12 (353.9M)", JetTiny with { Moe = Soft(197, Layers7To12) }),
        V("soft_moe_s", "Soft MoE-S baseline: ViT-S width, 197 experts (1412.0M)", JetSmall with { Moe = Soft(197, Layers7To12) }),
        C("convnext_femto", "timm ConvNeXt-F (depths 2,2,6,2; widths 48..384)", new ConvNeXtConfig { Depths = [2, 2, 6, 2], Dims = [48, 96, 192, 384] }),
        C("convnext_tiny", "timm ConvNeXt-T (depths 3,3,9,3; widths 96..768)", new ConvNeXtConfig { Depths = [3, 3, 9, 3], Dims = [96, 192, 384, 768] }),
        // Spec §6.3 [I]: "10:18" read as depths (3,3,9,3) with femto widths; MoE in blocks 10–18 =
        // stage-3 blocks 3..8 (98/196 experts at D=192) and all stage-4 blocks (24/48 at D=384).
        C("c_jetmoe_f", "C-JetMoE-F (assumed depths 3,3,9,3, femto widths; MoE 10:18)", new ConvNeXtConfig
        {
            Depths = [3, 3, 9, 3], Dims = [48, 96, 192, 384], DropPathRate = 0.1,
            StageMoe = [null, null, Sphero(98, 196, 3, 4, 5, 6, 7, 8), Sphero(24, 48, 0, 1, 2)],
        }),
        V("vit_fmnist_pred", "Fashion-MNIST predecessor: 28×28×1, patch 4, width 128, depth 6 (ViT-S-like)", FmPred),
        V("vit_fmnist_t", "Fashion-MNIST dense target: width 64, depth 6 (ViT-T-like)", FmTarget),
        V("v_jetmoe_fmnist", "Fashion-MNIST MoE Jetpack: width 64, SpheroMoE in blocks 4:6, 24/48 experts", FmTarget with { DropPathRate = 0.1, Moe = Sphero(24, 48, 3, 4, 5) }),
        V("v_jetmoe_fmnist_upcycle", "Fashion-MNIST Sparse Upcycling: 49 core experts (copies of the target MLP) in blocks 4:6", FmTarget with { DropPathRate = 0.1, Moe = Sphero(49, 0, 3, 4, 5) }),
        V("soft_moe_fmnist", "Fashion-MNIST Soft MoE: width 64, 49 full-size experts in blocks 4:6", FmTarget with { DropPathRate = 0.1, Moe = Soft(49, 3, 4, 5) }),
        .. Table4Grid(),
    ];

    /// <summary>
    /// The paper's Table 4 axes at Fashion-MNIST scale (`jetpack study --only table4`): SpheroMoE in the last 2, 4
    /// or 6 of the 6 blocks × ¼, ½ or all of v_jetmoe_fmnist's 24 core / 48 universal experts.
    /// </summary>
    static IEnumerable<(string, string, ModelSpec)> Table4Grid() =>
        from last in Table4Layers
        from core in Table4CoreExperts
        select V(Table4Name(last, core), $"Fashion-MNIST Table 4 grid: SpheroMoE in the last {last} blocks, {core}/{2 * core} experts",
                 FmTarget with { DropPathRate = 0.1, Moe = Sphero(core, 2 * core, Enumerable.Range(Fm.Depth - last, last).ToArray()) });

    public static string Table4Name(int lastLayers, int coreExperts) => $"v_jetmoe_fmnist_l{lastLayers}_e{coreExperts}";

    static (string, string, ModelSpec) V(string name, string about, VitConfig c) => (name, about, new ModelSpec(name, Vit: c));
    static (string, string, ModelSpec) C(string name, string about, ConvNeXtConfig c) => (name, about, new ModelSpec(name, ConvNeXt: c));

    public static IReadOnlyList<string> Names { get; } = Table.Select(t => t.Name).ToArray();

    public static string Describe(string name) => Find(name).About;

    /// <summary>The spec of a registered variant; unknown names fail with the list of known ones.</summary>
    public static ModelSpec Get(string name) => Find(name).Spec;

    static (string Name, string About, ModelSpec Spec) Find(string name)
    {
        foreach (var t in Table) if (t.Name == name) return t;
        throw new ArgumentException($"unknown model variant '{name}'; known: {string.Join(", ", Names)}");
    }

    /// <summary>Builds a model from its spec on a device ("meta" builds shapes without storage).</summary>
    public static nn.Module<Tensor, Tensor> Create(ModelSpec spec, Device? device = null) => Create(spec, device, shard: null);

    /// <summary>
    /// Builds one rank's part of an expert-parallel model: every SpheroMoE layer holds only the
    /// shard's <c>ExpertRange</c> of its experts (same state-dict keys, shapes the local slice) and
    /// runs them through the shard's exchange; all other parameters are the full replicated ones.
    /// <paramref name="shard"/> null is the ordinary single-process model.
    /// </summary>
    public static nn.Module<Tensor, Tensor> Create(ModelSpec spec, Device? device, ExpertShard? shard) =>
        spec.Vit is not null ? new VisionTransformer(spec.Vit, device, shard)
        : spec.ConvNeXt is not null ? new ConvNeXt(spec.ConvNeXt, device, shard)
        : throw new ArgumentException($"variant '{spec.Variant}' has no architecture config");

    public static nn.Module<Tensor, Tensor> Create(string name, Device? device = null) => Create(Get(name), device);

    /// <summary>Input shape [c, H, W] of one image for a spec.</summary>
    public static long[] ImageShape(ModelSpec spec) =>
        spec.Vit is { } v ? [v.InChannels, v.ImageSize, v.ImageSize]
        : [spec.ConvNeXt!.InChannels, spec.ConvNeXt.ImageSize, spec.ConvNeXt.ImageSize];

    public static long ParameterCount(nn.Module module) => module.parameters().Sum(p => p.numel());
}
