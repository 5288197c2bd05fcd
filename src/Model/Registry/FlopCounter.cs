using Jetpack.Model.Models;

namespace Jetpack.Model.Registry;

/// <summary>
/// Analytic multiply-accumulate counts of one image's forward pass (matmuls and convs only, as
/// papers count FLOPs). Used for achieved-FLOP/s figures; spec §3.4 gives the SpheroMoE terms.
/// </summary>
public static class FlopCounter
{
    /// <param name="attentionScores">count QKᵀ and A·V too. The paper's figures (spec §3.4: ViT-T
    /// 1.08 G) leave them out, as common FLOP profilers do; achieved-FLOP/s figures include them.</param>
    public static double ForwardMacs(ModelSpec spec, bool attentionScores = false) =>
        spec.Vit is { } v ? VitMacs(v, attentionScores) : ConvNeXtMacs(spec.ConvNeXt!);

    /// <summary>FLOPs of one training step, all matmuls counted (backward ≈ 2× forward; 2 FLOPs per MAC).</summary>
    public static double TrainStepFlops(ModelSpec spec, int batch) => 3 * 2 * ForwardMacs(spec, attentionScores: true) * batch;

    static double VitMacs(VitConfig c, bool attentionScores)
    {
        double d = c.Dim, n = c.NumPatches + 1, p = c.PatchSize;
        double macs = c.NumPatches * d * c.InChannels * p * p;                 // patch embed
        for (int i = 0; i < c.Depth; i++)
        {
            macs += n * d * 3 * d + n * d * d + (attentionScores ? 2 * n * n * d : 0); // qkv, proj (QKᵀ, AV)
            macs += c.Moe is { } m && m.Layers.Contains(i) ? MoeMacs(n, c.Dim, m) : 2 * n * d * c.MlpHidden;
        }
        return macs + d * c.NumClasses;
    }

    /// <summary>Routing (logits, slots, combine: three n·j·d products) + experts on their slots.</summary>
    public static double MoeMacs(double tokens, int dim, MoeConfig m)
    {
        double slots = m.TotalExperts * m.SlotsPerExpert;
        double routing = 3 * tokens * slots * dim;
        double core = m.CoreExperts * m.SlotsPerExpert * 2.0 * dim * m.CoreHidden(dim);
        double univ = m.UniversalExperts * m.SlotsPerExpert * 2.0 * dim * m.UniversalHidden(dim);
        return routing + core + univ;
    }

    static double ConvNeXtMacs(ConvNeXtConfig c)
    {
        double hw = c.ImageSize / 4.0 * (c.ImageSize / 4.0);
        double macs = hw * c.Dims[0] * c.InChannels * 16;                      // stem 4×4
        for (int s = 0; s < 4; s++)
        {
            if (s > 0) { hw /= 4; macs += hw * c.Dims[s] * c.Dims[s - 1] * 4; } // downsample 2×2
            double d = c.Dims[s];
            for (int i = 0; i < c.Depths[s]; i++)
            {
                macs += hw * d * 49;                                           // depthwise 7×7
                macs += c.StageMoe[s] is { } m && m.Layers.Contains(i) ? MoeMacs(hw, c.Dims[s], m) : 2 * hw * d * 4 * d;
            }
        }
        return macs + c.Dims[3] * (double)c.NumClasses;
    }
}
