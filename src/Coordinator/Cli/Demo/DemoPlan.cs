using Jetpack.Coordinator.Cli.Study;

namespace Jetpack.Coordinator.Cli.Demo;

/// <summary>
/// The sizes of <c>jetpack demo</c> (issue 6: one machine, ≤ 15 minutes on this 2-core machine). It
/// reuses the study's plan type (<see cref="StudyPlan"/>: upstream on classes 0–4, downstream on 500
/// images per class of classes 5–9, the same recipe for every downstream run) with fewer steps, and
/// names the runs it makes: the Jetpack job through the workers and the baselines in this process.
/// </summary>
public static class DemoPlan
{
    /// <summary>The README's main job. Sizes measured on the shared 2-core machine (README "jetpack demo").</summary>
    public static StudyPlan Full => new()
    {
        // Upstream long enough that recycling has something to recycle: with 100 + 100 steps of 64 the
        // upstream models reached ~40% on classes 0–4 and the recycled MoE trained worse than scratch.
        Name = "demo", PredecessorSteps = 500, TargetSteps = 400, UpstreamBatch = 128, ProfileImages = 2000,
        DownstreamSteps = 240, DownstreamBatch = 64, PerClass = 500, Evaluations = 6, EvalImages = 1000,
    };

    /// <summary>Every stage on tiny sizes (about a minute plus process start-ups): checks an installation, the numbers mean nothing.</summary>
    public static StudyPlan Smoke => new()
    {
        Name = "demo-smoke", PredecessorSteps = 3, TargetSteps = 3, UpstreamBatch = 16, ProfileImages = 64,
        DownstreamSteps = 4, DownstreamBatch = 10, PerClass = 6, Evaluations = 2, EvalImages = 50,
    };

    /// <summary>The Jetpack run (importance-L2 recycling + SpheroMoE, expert-parallel) and the baselines trained beside it for equal steps.</summary>
    public static StudyRun Jetpack => StudyPlan.Runs.Single(r => r.Id == "jetpack");

    public static IReadOnlyList<StudyRun> Baselines => [.. StudyPlan.Runs.Where(r => r.Id is "soft_moe_scratch" or "dense_scratch")];
}
