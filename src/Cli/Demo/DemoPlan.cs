using Jetpack.Cli.Study;

namespace Jetpack.Cli.Demo;

/// <summary>
/// The sizes of <c>jetpack demo</c> (issue 6: one machine, ≤ 15 minutes on this 2-core machine). It
/// reuses the study's plan type (<see cref="StudyPlan"/>: upstream on classes 0–4, downstream on 500
/// images per class of classes 5–9, the same recipe for every downstream run) with fewer steps, and
/// names the runs it makes: the Jetpack job through the workers and the baselines in this process.
/// </summary>
public static class DemoPlan
{
    /// <summary>
    /// The README's main job: the full study's upstream (200 + 200 steps of 128, 2,000 profiled images)
    /// and a shorter downstream (160 steps of 64 instead of 200, 8 evaluations), to keep ≤ 15 minutes on
    /// the slow 2-core EPYC. Measured there (2026-12-04): the study's sizes took 15.5 min; upstream
    /// 150 + 150 took 10.5 min but left the target at 65 % on classes 0–4 (73 % after 200 steps) and
    /// Jetpack at 70.2 % downstream, below Soft MoE from scratch (71.1 %); 200 + 200 gave 78.0 % (200 downstream steps).
    /// </summary>
    public static StudyPlan Full => StudyPlan.Full with { Name = "demo", DownstreamSteps = 160, Evaluations = 8 };

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
