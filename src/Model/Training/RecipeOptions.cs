namespace Jetpack.Model.Training;

/// <summary>Optimiser-recipe settings that shape the parameter groups (spec §7.2).</summary>
public sealed record RecipeOptions
{
    /// <summary>Layer-wise lr decay; the multiplier of layer id i is decay^(depth + 1 − i). 1.0 disables it (the scratch config).</summary>
    public double LayerDecay { get; init; } = 0.6;

    /// <summary>AdamW weight decay for the parameters that decay (spec §7.2: 0.05).</summary>
    public double WeightDecay { get; init; } = 0.05;

    public void Validate()
    {
        if (LayerDecay is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(LayerDecay), $"layer decay must be in (0, 1], got {LayerDecay}");
        if (WeightDecay < 0) throw new ArgumentOutOfRangeException(nameof(WeightDecay), $"weight decay must be ≥ 0, got {WeightDecay}");
    }
}
