using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using Jetpack.Model.Distributed;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;
using Jetpack.Model.Tests.Checkpoints;
using Jetpack.Model.Training;
using Xunit.Abstractions;

namespace Jetpack.Model.Tests.Distributed;

/// <summary>
/// The standing proof of the engine (DESIGN.md): with dropout, routing noise and drop path off, N
/// in-process ranks (N = 1, 2, 3; 3 divides neither 5 nor 7 experts nor the micro-batch of 7) give
/// the single-process trainer's losses and final parameters on the same global batch; checkpoints
/// move between world sizes without changing the run.
/// </summary>
public class DistributedTrainerTests(ITestOutputHelper output)
{
    const int Steps = 6;
    const double Tolerance = 1e-4;

    static readonly TrainerOptions Recipe = new()
    {
        Steps = Steps, GlobalBatch = 14, Accumulation = 2, LearningRate = 2e-3, WarmupSteps = 2, ClipNorm = 0.5,
        LayerDecay = 0.6, LabelSmoothing = 0.1, Mixup = null, Seed = 11,
    };

    /// <summary>With Mixup/CutMix (switching per step) on a seeded-augmentation dataset.</summary>
    static readonly TrainerOptions MixRecipe = Recipe with { Mixup = new MixupCutmixOptions() };

    /// <summary>Initial weights shared by every run of a test.</summary>
    static Dictionary<string, Tensor> Initial(ModelSpec? spec = null)
    {
        spec ??= Ranks.Tiny;
        torch.manual_seed(31);
        using var model = ModelRegistry.Create(spec);
        return Ranks.Clone(model.state_dict());
    }

    static (List<double> Losses, Dictionary<string, Tensor> Final) Single(Dictionary<string, Tensor> initial, int steps, string? resumeFrom = null,
                                                                          string? saveTo = null, bool mix = false, bool bf16 = false, ModelSpec? spec = null)
    {
        spec ??= Ranks.Tiny;
        using var raw = Ranks.Data(56, 5);
        IImageDataset data = mix ? new SeededShiftDataset(raw) : raw;
        using var model = ModelRegistry.Create(spec);
        model.load_state_dict(initial);
        using var trainer = new Trainer(spec, model, data, (mix ? MixRecipe : Recipe) with { Precision = bf16 ? Precision.Bf16 : Precision.Fp32 });
        if (resumeFrom is not null) trainer.Restore(resumeFrom);
        var losses = Enumerable.Range(0, steps).Select(_ => trainer.TrainStep().Loss).ToList();
        if (saveTo is not null) trainer.Save(saveTo);
        return (losses, Ranks.Clone(model.state_dict()));
    }

    /// <summary>N ranks on threads, each with its own model (its expert slices) and trainer; returns rank 0's losses and the gathered state.</summary>
    /// <param name="expertParallel">G of world = G × R (null = world): experts sharded over G ranks, R data-parallel replicas</param>
    static (List<double> Losses, Dictionary<string, Tensor> Final) Distributed(int world, Dictionary<string, Tensor> initial, int steps,
                                                                              string? resumeFrom = null, string? saveTo = null, bool mix = false, bool bf16 = false,
                                                                              int? expertParallel = null, ModelSpec? spec = null)
    {
        spec ??= Ranks.Tiny;
        using var raw = Ranks.Data(56, 5);
        IImageDataset data = mix ? new SeededShiftDataset(raw) : raw;
        var hub = new InProcessHub(world, TimeSpan.FromSeconds(30));
        var layout = ParallelLayout.Of(world, expertParallel);
        int g = layout.ExpertParallel;
        var results = Ranks.Run(world, rank =>
        {
            var context = layout.Replicas == 1 && expertParallel is null
                ? new DistributedContext(rank, world, hub[rank], hub[rank])
                : new DistributedContext(layout, rank, hub.Group(rank, layout.Group(rank)), hub[rank], hub.Group(rank, layout.Holders(rank)));
            using var model = ModelRegistry.Create(spec, CPU, context.Shard);
            model.load_state_dict(ExpertKeys.Slice(spec, initial, g, layout.Position(rank)));
            using var trainer = new Trainer(spec, model, data, (mix ? MixRecipe : Recipe) with { Precision = bf16 ? Precision.Bf16 : Precision.Fp32 }, CPU, context);
            if (resumeFrom is not null) trainer.Restore(resumeFrom);
            var losses = Enumerable.Range(0, steps).Select(_ => trainer.TrainStep().Loss).ToList();
            if (saveTo is not null) trainer.Save(saveTo);
            return (losses, State: Ranks.Clone(model.state_dict()));
        });
        for (int r = 1; r < world; r++) Assert.Equal(results[0].losses, results[r].losses);     // the all-reduced loss is the same everywhere
        var states = results.Select(r => (IReadOnlyDictionary<string, Tensor>)r.State).ToList();
        foreach (var (key, t) in states[0])                                                     // replicated parameters agree bit for bit
            if (!ExpertKeys.IsExpert(spec, key))
                for (int r = 1; r < world; r++) Assert.True(t.eq(states[r][key]).all().item<bool>(), $"replicated {key} differs between rank 0 and rank {r}");
        for (int r = g; r < world; r++)                                                         // every replica holds the same experts, bit for bit
            foreach (var (key, t) in states[r])
                if (ExpertKeys.IsExpert(spec, key))
                    Assert.True(t.eq(states[layout.Position(r)][key]).all().item<bool>(), $"expert {key} differs between rank {r} and rank {layout.Position(r)} of replica 0");
        return (results[0].losses, ExpertKeys.Gather(spec, states.Take(g).ToList()));
    }

    void AssertSameRun((List<double> Losses, Dictionary<string, Tensor> Final) expected, (List<double> Losses, Dictionary<string, Tensor> Final) got, string what)
    {
        double lossDev = expected.Losses.Zip(got.Losses, (a, b) => Math.Abs(a - b) / Math.Abs(a)).Max();
        double paramDev = expected.Final.Max(kv => Ranks.RelativeDeviation(got.Final[kv.Key], kv.Value));
        output.WriteLine($"{what}: max relative loss deviation {lossDev:g3}, max relative parameter deviation {paramDev:g3}; losses {string.Join(", ", got.Losses.Select(l => l.ToString("F5")))}");
        Assert.Equal(expected.Losses.Count, got.Losses.Count);
        for (int i = 0; i < expected.Losses.Count; i++)
            Assert.True(Math.Abs(expected.Losses[i] - got.Losses[i]) <= Tolerance * Math.Abs(expected.Losses[i]),
                $"{what}: loss of step {i + 1}: {got.Losses[i]:R} vs single process {expected.Losses[i]:R}");
        Assert.Equal(expected.Final.Keys.Order(), got.Final.Keys.Order());
        foreach (var (key, t) in expected.Final)
        {
            double dev = Ranks.RelativeDeviation(got.Final[key], t);
            Assert.True(dev <= Tolerance, $"{what}: {key} deviates by {dev:g3} (relative)");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void NRanksTrainLikeOneProcess(int world)
    {
        var initial = Initial();
        var single = Single(initial, Steps);
        Assert.True(single.Losses.Distinct().Count() == Steps, "the losses should change from step to step");
        var distributed = Distributed(world, initial, Steps);
        AssertSameRun(single, distributed, $"{world} ranks");
    }

    /// <summary>
    /// world = G × R (DESIGN.md "Parallel layout"): experts sharded over G ranks, R data-parallel
    /// replicas; expert gradients summed over the replicas only. G = 1 is pure data parallelism.
    /// </summary>
    [Theory]
    [InlineData(4, 2)]
    [InlineData(4, 4)]
    [InlineData(4, 1)]
    public void ExpertGroupsTimesReplicasTrainLikeOneProcess(int world, int expertParallel)
    {
        var initial = Initial();
        AssertSameRun(Single(initial, Steps), Distributed(world, initial, Steps, expertParallel: expertParallel), $"{world} ranks, G = {expertParallel}");
    }

    /// <summary>Soft MoE layers are expert-parallel too (issue 19: baselines scale like Jetpack): 3 ranks, and 4 ranks as 2 × 2.</summary>
    [Theory]
    [InlineData(3, null)]
    [InlineData(4, 2)]
    public void SoftMoeTrainsExpertParallelLikeOneProcess(int world, int? expertParallel)
    {
        var soft = Ranks.Tiny with
        {
            Variant = "tiny_soft_expert_parallel",
            Vit = Ranks.Tiny.Vit! with { Moe = Ranks.Tiny.Vit.Moe! with { Kind = MoeKind.Soft, CoreExperts = 7, UniversalExperts = 0 } },
        };
        var initial = Initial(soft);
        AssertSameRun(Single(initial, Steps, spec: soft), Distributed(world, initial, Steps, expertParallel: expertParallel, spec: soft), $"Soft MoE on {world} ranks, G = {expertParallel ?? world}");
    }

    /// <summary>A checkpoint records its layout (G expert files) and loads into any other: 4 ranks G = 2 → 4 ranks G = 4 → one process, and back.</summary>
    [Fact]
    public void ACheckpointOfOneLayoutResumesInAnother()
    {
        var initial = Initial();
        var uninterrupted = Single(initial, Steps);
        using var dir = new TempDirectory();
        var first = dir.File("g2");
        var a = Distributed(4, initial, 2, saveTo: first, expertParallel: 2);
        var manifest = TrainingCheckpoint.ReadManifest(first);
        Assert.Equal((4, 2, 2), (manifest.WorldSize, manifest.ExpertParallel, manifest.ExpertFiles.Count));
        Assert.Equal(4, Directory.GetFiles(first).Length);                  // manifest, replicated, 2 expert files
        var second = dir.File("g4");
        var b = Distributed(4, initial, 2, resumeFrom: first, saveTo: second, expertParallel: 4);
        Assert.Equal(4, TrainingCheckpoint.ReadManifest(second).ExpertFiles.Count);
        var c = Distributed(4, initial, 2, resumeFrom: second, expertParallel: 2);
        AssertSameRun(uninterrupted, (a.Losses.Concat(b.Losses).Concat(c.Losses).ToList(), c.Final), "G = 2 → G = 4 → G = 2");
        var single = Single(initial, 4, resumeFrom: first);
        AssertSameRun(uninterrupted, (a.Losses.Concat(single.Losses).ToList(), single.Final), "G = 2 → one process");
    }

    /// <summary>Per-image augmentation depends on (seed, step, micro, index) only and each rank mixes with its mirror slice, so Mixup/CutMix runs are equal too.</summary>
    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void NRanksWithAugmentationAndMixupTrainLikeOneProcess(int world)
    {
        var initial = Initial();
        AssertSameRun(Single(initial, Steps, mix: true), Distributed(world, initial, Steps, mix: true), $"{world} ranks with Mixup");
    }

    /// <summary>bf16 shadows are sharded too and exchange bf16 slots; equal to one process only within bf16 precision.</summary>
    [Fact]
    public void Bf16RanksTrainCloseToOneProcess()
    {
        var initial = Initial();
        var single = Single(initial, 3, bf16: true);
        var two = Distributed(2, initial, 3, bf16: true);
        for (int i = 0; i < 3; i++)
            Assert.True(Math.Abs(single.Losses[i] - two.Losses[i]) < 2e-2 * single.Losses[i], $"bf16 loss of step {i + 1}: {two.Losses[i]} vs {single.Losses[i]}");
        output.WriteLine($"bf16: single {string.Join(", ", single.Losses)}; 2 ranks {string.Join(", ", two.Losses)}");
    }

    [Fact]
    public void ACheckpointOfThreeRanksResumesOnTwoAndOnOne()
    {
        var initial = Initial();
        var uninterrupted = Single(initial, Steps);
        using var dir = new TempDirectory();
        var ckpt = dir.File("ckpt");
        var first = Distributed(3, initial, 3, saveTo: ckpt);
        var manifest = TrainingCheckpoint.ReadManifest(ckpt);
        Assert.Equal(3, manifest.WorldSize);
        Assert.Equal(3, manifest.Step);
        Assert.Equal(5, Directory.GetFiles(ckpt).Length);                   // manifest, replicated, 3 expert files
        Assert.Empty(Directory.GetDirectories(dir.FullPath, "ckpt.tmp-*"));

        var onTwo = Distributed(2, initial, 3, resumeFrom: ckpt);          // initial weights are overwritten by the restore
        AssertSameRun(uninterrupted, (first.Losses.Concat(onTwo.Losses).ToList(), onTwo.Final), "3 ranks → 2 ranks");
        var onOne = Single(initial, 3, resumeFrom: ckpt);
        AssertSameRun(uninterrupted, (first.Losses.Concat(onOne.Losses).ToList(), onOne.Final), "3 ranks → 1 process");
    }

    [Fact]
    public void ASingleProcessCheckpointResumesOnThreeRanks()
    {
        var initial = Initial();
        var uninterrupted = Single(initial, Steps);
        using var dir = new TempDirectory();
        var ckpt = dir.File("ckpt");
        var first = Single(initial, 2, saveTo: ckpt);
        Assert.Equal(1, TrainingCheckpoint.ReadManifest(ckpt).WorldSize);
        var rest = Distributed(3, initial, Steps - 2, resumeFrom: ckpt);
        AssertSameRun(uninterrupted, (first.Losses.Concat(rest.Losses).ToList(), rest.Final), "1 process → 3 ranks");
    }

    [Fact]
    public void ACorruptedFileIsRefusedByName()
    {
        var initial = Initial();
        using var dir = new TempDirectory();
        var ckpt = dir.File("ckpt");
        Distributed(2, initial, 1, saveTo: ckpt);
        var victim = Path.Combine(ckpt, TrainingCheckpoint.ExpertFile(1, 2));
        var bytes = File.ReadAllBytes(victim);
        bytes[^3] ^= 0x40;                                                  // one bit of one weight
        File.WriteAllBytes(victim, bytes);
        var e = Assert.Throws<InvalidDataException>(() => Single(initial, 1, resumeFrom: ckpt));
        Assert.Contains(TrainingCheckpoint.ExpertFile(1, 2), e.Message);
        Assert.Contains("SHA-256", e.Message);
    }
}

public class DistributedEvaluationTests
{
    /// <summary>An eval split smaller than the world: some ranks' slices are empty in every batch, yet they join the exchanges and the all-reduce.</summary>
    [Theory]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(2, 1)]
    public void AnEvalSplitSmallerThanTheWorldEvaluatesAsOneProcess(int world, int images)
    {
        torch.manual_seed(43);
        using var full = ModelRegistry.Create(Ranks.Tiny);
        var initial = Ranks.Clone(full.state_dict());
        using var train = Ranks.Data(12, 9);
        using var eval = Ranks.Data(images, 17);
        var recipe = new TrainerOptions { Steps = 1, GlobalBatch = 6, Mixup = null };
        using var single = new Trainer(Ranks.Tiny, full, train, recipe);
        var expected = single.Evaluate(eval);
        var hub = new InProcessHub(world, TimeSpan.FromSeconds(30));
        var got = Ranks.Run(world, rank =>
        {
            var context = new DistributedContext(rank, world, hub[rank], hub[rank]);
            using var model = ModelRegistry.Create(Ranks.Tiny, CPU, context.Shard);
            model.load_state_dict(ExpertKeys.Slice(Ranks.Tiny, initial, world, rank));
            using var trainer = new Trainer(Ranks.Tiny, model, train, recipe, CPU, context);
            return trainer.Evaluate(eval);
        });
        Assert.Equal(images, expected.Images);
        for (int r = 0; r < world; r++)
        {
            Assert.Equal(expected.Images, got[r].Images);
            Assert.Equal(expected.Top1, got[r].Top1);
            Assert.Equal(expected.Top5, got[r].Top5);
            Assert.True(double.IsFinite(got[r].Loss) && Math.Abs(expected.Loss - got[r].Loss) <= 1e-5 * expected.Loss, $"rank {r}: loss {got[r].Loss} vs {expected.Loss}");
        }
    }

    [Fact]
    public void AnEmptyEvaluationIsRefusedInsteadOfDividingByZero()
    {
        torch.manual_seed(43);
        using var model = ModelRegistry.Create(Ranks.Tiny);
        using var train = Ranks.Data(12, 9);
        using var trainer = new Trainer(Ranks.Tiny, model, train, new TrainerOptions { Steps = 1, GlobalBatch = 6 });
        Assert.Contains("data.eval_limit", Assert.Throws<ArgumentException>(() => trainer.Evaluate(train, limit: 0)).Message);
    }

    [Fact]
    public void RanksEvaluateTheirSlicesAndAgreeWithOneProcess()
    {
        torch.manual_seed(41);
        using var full = ModelRegistry.Create(Ranks.Tiny);
        var initial = Ranks.Clone(full.state_dict());
        using var data = Ranks.Data(21, 9);
        var recipe = new TrainerOptions { Steps = 1, GlobalBatch = 8, Mixup = null };
        using var single = new Trainer(Ranks.Tiny, full, data, recipe);
        var expected = single.Evaluate(data, batch: 10);                     // batches of 10, 10 and 1: a rank gets nothing of the last
        var hub = new InProcessHub(2, TimeSpan.FromSeconds(30));
        var got = Ranks.Run(2, rank =>
        {
            var context = new DistributedContext(rank, 2, hub[rank], hub[rank]);
            using var model = ModelRegistry.Create(Ranks.Tiny, CPU, context.Shard);
            model.load_state_dict(ExpertKeys.Slice(Ranks.Tiny, initial, 2, rank));
            using var trainer = new Trainer(Ranks.Tiny, model, data, recipe, CPU, context);
            return trainer.Evaluate(data, batch: 10);
        });
        foreach (var r in got)
        {
            Assert.Equal(expected.Images, r.Images);
            Assert.Equal(expected.Top1, r.Top1);
            Assert.Equal(expected.Top5, r.Top5);
            Assert.True(Math.Abs(expected.Loss - r.Loss) < 1e-5 * expected.Loss, $"loss {r.Loss} vs {expected.Loss}");
        }
    }
}
