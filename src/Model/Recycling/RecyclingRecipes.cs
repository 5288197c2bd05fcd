namespace Jetpack.Model.Recycling;

/// <summary>
/// The default predecessor and target-width checkpoints' variants of each MoE successor (spec §5.1,
/// §6.3): experts come from the wider predecessor, everything else from the target-width model.
/// </summary>
public static class RecyclingRecipes
{
    static readonly (string Prefix, string Predecessor, string Target)[] Table =
    [
        ("v_jetmoe_t", "vit_small_patch16_224", "vit_tiny_patch16_224"),
        ("v_jetmoe_fmnist", "vit_fmnist_pred", "vit_fmnist_t"),
        ("c_jetmoe_f", "convnext_tiny", "convnext_femto"),
        ("soft_moe_fmnist", "vit_fmnist_pred", "vit_fmnist_t"),
        ("soft_moe_t", "vit_small_patch16_224", "vit_tiny_patch16_224"),
    ];

    /// <summary>(predecessor, target) variants for a successor, or null when there is no default (e.g. V-JetMoE-S: spec §6.1 leaves it open).</summary>
    public static (string Predecessor, string Target)? For(string successor)
    {
        foreach (var (prefix, pred, target) in Table)
            if (successor.StartsWith(prefix, StringComparison.Ordinal)) return (pred, target);
        return null;
    }
}
