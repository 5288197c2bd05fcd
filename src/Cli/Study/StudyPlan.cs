using Jetpack.Application.Runs;
using Jetpack.Model.Recycling;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;

namespace Jetpack.Cli.Study;

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
    /// <summary>Which of the paper's tables the run belongs to: 1 (method comparison), 3 (recycling strategies) or 4 (MoE layers × experts).</summary>
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

    /// <summary>
    /// The full study, sized for ≤ 30 minutes on the slower of the 2-core machines this runs on (AVX2 EPYC,
    /// ~35 GFLOP/s fp32 per core); the bf16 run is left out where bf16 would be emulated (see <c>--bf16</c>).
    /// </summary>
    public static StudyPlan Full => new()
    {
        Name = "full", PredecessorSteps = 200, TargetSteps = 200, ProfileImages = 2000, DownstreamSteps = 200,
        Evaluations = 20, EvalImages = 1000,   // every 10 steps (issue 17: convergence resolution), the same 1,000 images each time
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

    /// <summary>The id `--only` takes for every run of <see cref="Table4Runs"/>.</summary>
    public const string Table4Id = "table4";

    /// <summary>
    /// The paper's Table 4 at Fashion-MNIST scale: importance-recycled V-JetMoE with SpheroMoE in the last 2, 4 or 6
    /// blocks × ¼, ½ or all of the experts (registry entries <c>v_jetmoe_fmnist_l{L}_e{C}</c>). Only with
    /// <c>--only table4</c>: nine more runs would double the full study's time.
    /// </summary>
    public static IReadOnlyList<StudyRun> Table4Runs { get; } =
        (from last in ModelRegistry.Table4Layers
         from core in ModelRegistry.Table4CoreExperts
         select new StudyRun($"t4_l{last}_e{core}", $"last {last} blocks, {core}/{2 * core} experts", ModelRegistry.Table4Name(last, core),
                             StudyInit.Recycled, RecycleMethod.ImportanceL2)
         { Table = 4 }).ToList();

    /// <summary>Every run `--only` knows: the study's and Table 4's.</summary>
    public static IEnumerable<StudyRun> AllRuns => Runs.Concat(Table4Runs);

    /// <summary>
    /// The seed of repetition <paramref name="index"/> (0-based): index 0 is <see cref="Seed"/> itself, so a one-seed
    /// study is the study as before (and reuses its finished stages); the others are spaced far apart.
    /// It drives the data order, the init of fresh parts, the recycling draw, profiling's image sample and routing noise.
    /// </summary>
    public ulong SeedFor(int index) => Seed + 1000UL * (ulong)index;

    /// <summary>
    /// Fashion-MNIST without augmentation, upstream and downstream. Every run here is short (upstream sees
    /// each image about once, downstream each labelled image a few times), and augmentation slowed
    /// learning more than it regularised. Measured on this 2-core machine (2026-12-04, 150 steps, cosine):
    /// vit_fmnist_t upstream, batch 128, top-1 on classes 0–4: 65.0 % without, 54.0 % with
    /// RandomResizedCrop(0.8–1), 37.6 % with RandomResizedCrop(0.5–1) + flip; soft_moe_fmnist from scratch
    /// downstream, batch 64: 64.3 %, 59.5 %, 52.5 %. The recipe's augmentation stays available in
    /// <c>jetpack train</c> (data.augment and the fields after it).
    /// </summary>
    public RunData Data(string classes, int? perClass) => new()
    {
        Classes = classes, MaxPerClass = perClass, EvalLimit = EvalImages, Augment = false,
        RandAugment = false, RandomErasing = false,
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
