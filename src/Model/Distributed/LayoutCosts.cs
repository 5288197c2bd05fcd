using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Distributed;

/// <summary>What one training step of a model costs each rank under a layout (analytic, from shapes).</summary>
/// <param name="ComputeFlops">FLOPs of the busiest rank: its samples through the replicated layers + its experts on its group's slots</param>
/// <param name="ExchangeBytes">bytes the busiest rank sends in the all-to-all (4 phases per MoE layer and micro-batch)</param>
/// <param name="ExchangeMessages">pieces each rank sends to other ranks per step</param>
/// <param name="AllReduceBytes">bytes each rank sends in the ring all-reduces (replicated gradients over the world, its experts over the replicas)</param>
/// <param name="ExpertStateBytes">expert parameters + AdamW moments (m, v) of the busiest rank</param>
/// <param name="ReplicatedStateBytes">replicated parameters + AdamW moments, on every rank</param>
public sealed record StepCost(double ComputeFlops, double ExchangeBytes, long ExchangeMessages, double AllReduceBytes, double ExpertStateBytes, double ReplicatedStateBytes);

/// <summary>
/// The analytic cost of a step under a <see cref="ParallelLayout"/>: what `jetpack bench scaling`
/// sets its measurements against and what `jetpack plan` projects with fitted constants. FLOPs as
/// <see cref="FlopCounter"/> counts them (all matmuls, backward = 2× forward); the exchange's pieces
/// have fixed shapes (soft routing: every expert gets s slots of every sample), so its bytes follow
/// from the placement; fp32 everywhere (4 bytes per element).
/// </summary>
public static class LayoutCosts
{
    const double Bytes = 4;

    /// <summary>Parameters of one expert of a bank: fc1 (d·h + h) and fc2 (h·d + d).</summary>
    public static double ExpertParameters(int dim, int hidden) => 2.0 * dim * hidden + hidden + dim;

    public static StepCost Of(ModelSpec spec, ParallelLayout layout, int globalBatch, int accumulation = 1)
    {
        int world = layout.WorldSize, g = layout.ExpertParallel, r = layout.Replicas;
        if (globalBatch < world) throw new ArgumentException($"global batch {globalBatch} is smaller than the world {world}");
        double perImageMacs = FlopCounter.ForwardMacs(spec, attentionScores: true);
        // ViT or ConvNeXt alike: soft routing gives every expert s slots of every sample whatever its token count
        var layers = spec.MoeLayers().ToList();

        // The experts' share of a forward per image (slots · 2·d·h each), to move from "per sample" to "per group slot".
        double expertMacsPerImage = 0;
        foreach (var (_, dim, m) in layers)
            expertMacsPerImage += m.SlotsPerExpert * (m.CoreExperts * 2.0 * dim * m.CoreHidden(dim) + m.UniversalExperts * 2.0 * dim * m.UniversalHidden(dim));
        double denseMacsPerImage = perImageMacs - expertMacsPerImage;

        int bLocal = (globalBatch + world - 1) / world;                      // the busiest rank's samples
        int bGroup = globalBatch / r + (globalBatch % r == 0 ? 0 : 1);        // samples whose slots one group's experts see
        double ownExpertMacs = 0, exchangeElements = 0, expertParams = 0, allExpertParams = 0;
        foreach (var (_, dim, m) in layers)
        {
            var ranges = ExpertPlacement.Ranges(m, g);
            var busiest = ranges.MaxBy(x => ExpertPlacement.Cost(m, x));
            double s = m.SlotsPerExpert;
            ownExpertMacs += s * (busiest.CoreCount * 2.0 * dim * m.CoreHidden(dim) + busiest.UnivCount * 2.0 * dim * m.UniversalHidden(dim));
            double pc = ExpertParameters(dim, m.CoreHidden(dim)), pu = ExpertParameters(dim, m.UniversalHidden(dim));
            expertParams += ranges.Max(x => x.CoreCount * pc + x.UnivCount * pu);
            allExpertParams += m.CoreExperts * pc + m.UniversalExperts * pu;
            // sent per micro-batch: dispatch (own samples' slots of others' experts) + return (others' samples on own experts), twice (forward, backward)
            int c = busiest.Count;
            exchangeElements += 2 * s * dim * ((double)bLocal * (m.TotalExperts - c) + (double)(bGroup - bLocal) * c);
        }
        double totalParams = ParameterCount(spec);
        double replicatedParams = totalParams - allExpertParams;
        double flops = 6 * (denseMacsPerImage * bLocal + ownExpertMacs * bGroup);
        double ring(int n) => n <= 1 ? 0 : 2.0 * (n - 1) / n;
        return new StepCost(
            ComputeFlops: flops,
            ExchangeBytes: g == 1 ? 0 : exchangeElements * Bytes,             // summed over micro-batches: shapes scale with the micro-batch
            ExchangeMessages: g == 1 ? 0 : 4L * layers.Count * (g - 1) * accumulation,
            AllReduceBytes: Bytes * (replicatedParams * ring(world) + expertParams * ring(r)),
            ExpertStateBytes: 3 * Bytes * expertParams,
            ReplicatedStateBytes: 3 * Bytes * replicatedParams);
    }

    /// <summary>Parameters of the full model, counted on the meta device (no storage).</summary>
    public static double ParameterCount(ModelSpec spec)
    {
        using var model = ModelRegistry.Create(spec, new TorchSharp.torch.Device("meta"));
        return ModelRegistry.ParameterCount(model);
    }
}
