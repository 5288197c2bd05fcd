using Jetpack.Coordinator.Jobs;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Coordinator.Training;

/// <summary>The model a job trains: its registered variant, with the stochastic layers off when the spec is <see cref="JobSpec.Deterministic"/>.</summary>
public static class JobModel
{
    public static ModelSpec Resolve(JobSpec job)
    {
        var spec = ModelRegistry.Get(job.Model);
        return job.Deterministic ? WithoutRandomness(spec) : spec;
    }

    /// <summary>Dropout, DropPath (blocks and MoE) and routing noise set to 0 (spec §3.6 noise, §3.2 step 9 DropPath).</summary>
    public static ModelSpec WithoutRandomness(ModelSpec spec)
    {
        static MoeConfig? Quiet(MoeConfig? m) => m is null ? null : m with { ExpertDropout = 0, MoeDropPathRate = 0, NoiseStd = 0 };
        return spec with
        {
            Vit = spec.Vit is { } v ? v with { DropPathRate = 0, DropRate = 0, Moe = Quiet(v.Moe) } : null,
            ConvNeXt = spec.ConvNeXt is { } c ? c with { DropPathRate = 0, StageMoe = c.StageMoe.Select(Quiet).ToArray() } : null,
        };
    }
}
