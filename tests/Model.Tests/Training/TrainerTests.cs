using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using Jetpack.Model.Registry;
using Jetpack.Model.Tests.Checkpoints;
using Jetpack.Model.Training;

namespace Jetpack.Model.Tests.Training;

/// <summary>The single-process trainer: learning happens, and a run stopped at step k and resumed from
/// its checkpoint produces the same losses and weights as the uninterrupted run.</summary>
public class TrainerTests
{
    static TensorDataset Data(int n, ulong seed)
    {
        var gen = new Generator(seed);
        var labels = torch.randint(0, 10, [n], generator: gen);
        // class-dependent means so there is something to learn
        var images = torch.randn([n, 1, 28, 28], generator: gen) * 0.5 + labels.to(ScalarType.Float32).view(n, 1, 1, 1) / 5.0;
        return new TensorDataset(images, labels, 10);
    }

    static readonly TrainerOptions Recipe = new()
    {
        Steps = 6, GlobalBatch = 16, Accumulation = 2, LearningRate = 2e-3, WarmupSteps = 2, ClipNorm = 1.0,
        LayerDecay = 0.6, Mixup = new MixupCutmixOptions(), Seed = 11,
    };

    static List<double> Run(Trainer t, int steps) => Enumerable.Range(0, steps).Select(_ => t.TrainStep().Loss).ToList();

    [Fact]
    public void AResumedRunEqualsTheUninterruptedRun()
    {
        using var data = Data(64, 1);
        var spec = ModelRegistry.Get("v_jetmoe_fmnist");
        torch.manual_seed(5);
        using var modelA = ModelRegistry.Create(spec);
        var initial = modelA.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

        using var uninterrupted = new Trainer(spec, modelA, data, Recipe);
        var expected = Run(uninterrupted, 6);

        using var dir = new TempDirectory();
        using var modelB = ModelRegistry.Create(spec);
        modelB.load_state_dict(initial);
        List<double> first;
        using (var before = new Trainer(spec, modelB, data, Recipe))
        {
            first = Run(before, 3);
            before.Save(dir.File("ckpt"));
        }
        using var modelC = ModelRegistry.Create(spec);                   // fresh weights: all comes from the checkpoint
        using var resumed = new Trainer(spec, modelC, data, Recipe);
        resumed.Restore(dir.File("ckpt"));
        Assert.Equal(3, resumed.Step);
        var rest = Run(resumed, 3);

        Assert.Equal(expected, first.Concat(rest).ToList());
        var final = modelC.state_dict();
        foreach (var (key, t) in modelA.state_dict())
            Assert.True(t.eq(final[key]).all().item<bool>(), $"{key} differs after resume");
        foreach (var t in initial.Values) t.Dispose();
    }

    [Fact]
    public void TrainingLowersTheLossAndEvaluationCountsTopK()
    {
        using var data = Data(128, 2);
        var spec = ModelRegistry.Get("vit_fmnist_t");
        torch.manual_seed(6);
        using var model = ModelRegistry.Create(spec);
        using var trainer = new Trainer(spec, model, data, Recipe with { Steps = 30, Mixup = null, Accumulation = 1, GlobalBatch = 32, LearningRate = 3e-3 });
        var before = trainer.Evaluate(data);
        var losses = Run(trainer, 30);
        var after = trainer.Evaluate(data);
        Assert.True(losses.TakeLast(5).Average() < losses.Take(5).Average(), $"loss did not fall: {string.Join(", ", losses.Select(l => l.ToString("F3")))}");
        Assert.True(after.Loss < before.Loss);
        Assert.InRange(after.Top1, 0, 1);
        Assert.True(after.Top5 >= after.Top1);
        Assert.Equal(128, after.Images);
    }

    [Fact]
    public void ABadRecipeIsRefusedWithTheField()
    {
        using var data = Data(16, 3);
        var spec = ModelRegistry.Get("vit_fmnist_t");
        using var model = ModelRegistry.Create(spec);
        var e = Assert.Throws<ArgumentException>(() => new Trainer(spec, model, data, Recipe with { GlobalBatch = 10, Accumulation = 3 }));
        Assert.Contains("accumulation", e.Message);
        e = Assert.Throws<ArgumentException>(() => new Trainer(spec, model, data, Recipe with { GlobalBatch = 32, Accumulation = 1 }));
        Assert.Contains("exceeds the dataset", e.Message);
    }
}

public class AugmentedTrainingTests
{
    /// <summary>With RandAugment, crops, erasing and Mixup on, a resumed run still equals the uninterrupted one.</summary>
    [Fact]
    public void AugmentedRunsResumeExactly()
    {
        if (!Directory.Exists(IdxDataset.FashionMnistDirectory)) return;   // installed by scripts/setup.sh
        var source = IdxDataset.OpenSplit(IdxDataset.FashionMnistDirectory, "t10k", EvalTransform.ScaleNormalize([0.5f], [0.5f]),
                                          new IdxOptions { Classes = [0, 1, 2, 3, 4], MaxPerClass = 20 });
        var data = new AugmentedDataset(source, new TrainTransform(AugmentOptions.FashionMnist()));
        var spec = ModelRegistry.Get("vit_fmnist_t");
        var recipe = new TrainerOptions { Steps = 4, GlobalBatch = 16, WarmupSteps = 1, Mixup = new MixupCutmixOptions(), Seed = 3 };
        torch.manual_seed(9);
        using var a = ModelRegistry.Create(spec);
        var initial = a.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        using var full = new Trainer(spec, a, data, recipe);
        var expected = Enumerable.Range(0, 4).Select(_ => full.TrainStep().Loss).ToList();

        using var dir = new TempDirectory();
        using var b = ModelRegistry.Create(spec);
        b.load_state_dict(initial);
        var got = new List<double>();
        using (var t = new Trainer(spec, b, data, recipe)) { got.Add(t.TrainStep().Loss); got.Add(t.TrainStep().Loss); t.Save(dir.File("c")); }
        using var c = ModelRegistry.Create(spec);
        using var resumed = new Trainer(spec, c, data, recipe);
        resumed.Restore(dir.File("c"));
        got.Add(resumed.TrainStep().Loss); got.Add(resumed.TrainStep().Loss);
        Assert.Equal(expected, got);
        foreach (var t in initial.Values) t.Dispose();
    }
}
