using Jetpack.Model.Recycling;
using Jetpack.Model.Training;

namespace Jetpack.Coordinator.Cli.Study;

/// <summary>How a downstream run is initialised.</summary>
public enum StudyInit
{
    /// <summary>random init (spec §3.1 / timm inits)</summary>
    Scratch,
    /// <summary>the upstream-pretrained target-width dense model, head re-initialised</summary>
    UpstreamTarget,
    /// <summary>weight selection from the predecessor into the target width (spec §5.7 applied to a dense model)</summary>
    PredecessorSelection,
    /// <summary>checkpoint recycling (spec §5) with the run's method</summary>
    Recycled,
}

/// <summary>One downstream run of the study: a registry model, how it starts, and its recipe.</summary>
public sealed record StudyRun(string Id, string Label, string Model, StudyInit Init, RecycleMethod? Method = null, Precision Precision = Precision.Fp32)
{
    /// <summary>Which of the paper's tables the run belongs to: 1 (method comparison) or 3 (recycling strategies).</summary>
    public int Table { get; init; } = 1;
}

/// <summary>
/// The Fashion-MNIST reproduction of the paper's claim (issue 4 §4; paper Tables 1 and 3, Fig. 5),
/// scaled to a 2-core CPU. Upstream: classes 0–4 (30,000 images). Downstream: classes 5–9 with
/// <see cref="PerClass"/> labelled images per class, evaluated on the 5,000 test images of classes 5–9.
/// All downstream runs share one recipe and one number of steps.
/// </summary>
public sealed record StudyPlan
{
    public required string Name { get; init; }
    public int PredecessorSteps { get; init; }
    public int TargetSteps { get; init; }
    public int UpstreamBatch { get; init; } = 128;
    public int ProfileImages { get; init; }
    public int DownstreamSteps { get; init; }
    public int DownstreamBatch { get; init; } = 64;
    public int PerClass { get; init; } = 500;
    /// <summary>Evaluations per run (on <see cref="EvalImages"/> test images; the final one on all 5,000).</summary>
    public int Evaluations { get; init; } = 16;
    public int EvalImages { get; init; } = 2000;
    public ulong Seed { get; init; } = 3407;

    public const string UpstreamClasses = "0-4", DownstreamClasses = "5-9";

    /// <summary>The full study: about 20 minutes on this 2-core machine.</summary>
    public static StudyPlan Full => new()
    {
        Name = "full", PredecessorSteps = 600, TargetSteps = 600, ProfileImages = 4000, DownstreamSteps = 400,
    };

    /// <summary>A few minutes: every run of the full study, far fewer steps (numbers are indicative only).</summary>
    public static StudyPlan Quick => new()
    {
        Name = "quick", PredecessorSteps = 60, TargetSteps = 60, UpstreamBatch = 64, ProfileImages = 512, DownstreamSteps = 48,
        DownstreamBatch = 32, PerClass = 100, Evaluations = 8, EvalImages = 500,
    };

    /// <summary>Every stage on tiny sizes, in about a minute: checks an installation (and the tests); the numbers mean nothing.</summary>
    public static StudyPlan Smoke => new()
    {
        Name = "smoke", PredecessorSteps = 3, TargetSteps = 3, UpstreamBatch = 16, ProfileImages = 64, DownstreamSteps = 4,
        DownstreamBatch = 10, PerClass = 6, Evaluations = 2, EvalImages = 50,
    };

    public static IReadOnlyList<StudyRun> Runs { get; } =
    [
        new("dense_scratch", "ViT (dense), from scratch", "vit_fmnist_t", StudyInit.Scratch),
        new("dense_upstream", "ViT (dense), upstream-pretrained", "vit_fmnist_t", StudyInit.UpstreamTarget),
        new("dense_selection", "ViT (dense), weights selected from predecessor", "vit_fmnist_t", StudyInit.PredecessorSelection),
        new("soft_moe_scratch", "Soft MoE, from scratch", "soft_moe_fmnist", StudyInit.Scratch),
        new("jetpack", "MoE Jetpack (importance recycling + SpheroMoE)", "v_jetmoe_fmnist", StudyInit.Recycled, RecycleMethod.ImportanceL2),
        new("jetpack_bf16", "MoE Jetpack, bf16 policy", "v_jetmoe_fmnist", StudyInit.Recycled, RecycleMethod.ImportanceL2, Precision.Bf16),
        new("recycle_random", "random", "v_jetmoe_fmnist", StudyInit.Recycled, RecycleMethod.Random) { Table = 3 },
        new("recycle_uniform", "uniform", "v_jetmoe_fmnist", StudyInit.Recycled, RecycleMethod.Uniform) { Table = 3 },
        new("recycle_graph", "graph partitioning (co-activation)", "v_jetmoe_fmnist", StudyInit.Recycled, RecycleMethod.Graph) { Table = 3 },
        new("recycle_upcycling", "sparse upcycling (copies of the dense MLP)", "v_jetmoe_fmnist_upcycle", StudyInit.Recycled, RecycleMethod.SparseUpcycling) { Table = 3 },
    ];

    /// <summary>
    /// Fashion-MNIST with light augmentation (RandomResizedCrop from half the area, flip). RandAugment and
    /// RandomErasing are off: with a few hundred to a few thousand steps they slow convergence more than
    /// they regularise (probes on classes 0–4, batch 64: 60 steps with them reached 30% top-1, 100 steps
    /// without them 60%; not a controlled comparison, the reason to start light).
    /// </summary>
    public TrainData Data(string classes, int? perClass) => new()
    {
        Classes = classes, MaxPerClass = perClass, EvalLimit = EvalImages, Augment = true,
        RandAugment = false, RandomErasing = false, CropMinScale = 0.5,
    };

    /// <summary>The downstream recipe (spec §7.2 at small scale): fine-tuned runs use layer decay 0.6, runs from scratch none.</summary>
    public TrainerOptions Recipe(StudyRun run) => new()
    {
        Steps = DownstreamSteps, GlobalBatch = DownstreamBatch, LearningRate = 1e-3, WeightDecay = 0.05,
        LayerDecay = run.Init == StudyInit.Scratch ? 1.0 : 0.6, WarmupSteps = Math.Max(1, DownstreamSteps / 10),
        LabelSmoothing = 0.1, ClipNorm = 5, Seed = Seed, Precision = run.Precision,
    };

    public TrainerOptions UpstreamRecipe(int steps) => new()
    {
        Steps = steps, GlobalBatch = UpstreamBatch, LearningRate = 1e-3, WeightDecay = 0.05, LayerDecay = 1.0,
        WarmupSteps = Math.Max(1, steps / 10), LabelSmoothing = 0.1, ClipNorm = 5, Seed = Seed,
    };
}
