using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;
using Jetpack.Model.Tests.Checkpoints;

namespace Jetpack.Model.Tests.Registry;

/// <summary>Driven by the registry: every variant runs forward and backward on a small batch, every
/// parameter receives a finite gradient, and a save → load round trip gives bit-identical outputs.
/// One test per variant so that one model exists at a time; the peak is the weights plus their gradients
/// (8 bytes a parameter), the trained model being freed before its copy is loaded.</summary>
public sealed class EveryVariantTests : IDisposable
{
    /// <summary>After each variant: the freed model stays mapped by glibc otherwise (up to 1.7 GB, for the rest of the suite).</summary>
    public void Dispose() => TestRuntime.ReturnFreedNativeMemory();

    /// <summary>Above this many parameters a variant's test takes more than 8 GB (Soft MoE-S: 1412M, ~12 GB), so it runs
    /// as Category=Heavy, alone after the other test assemblies (scripts/test.sh); the ViT-T-width variants stay at ≤ 354M.</summary>
    const long HeavyParameters = 500_000_000;

    public static TheoryData<string> Variants() => new(ModelRegistry.Names.Where(n => !IsHeavy(n)));

    public static TheoryData<string> HeavyVariants() => new(ModelRegistry.Names.Where(IsHeavy));

    static bool IsHeavy(string variant)
    {
        using var shapes = ModelRegistry.Create(variant, torch.META);   // no storage
        return ModelRegistry.ParameterCount(shapes) > HeavyParameters;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void TrainsAndRoundTripsThroughACheckpoint(string variant) => TrainAndRoundTrip(variant);

    [Theory]
    [Trait("Category", "Heavy")]
    [MemberData(nameof(HeavyVariants))]
    public void TheLargestTrainAndRoundTripThroughACheckpoint(string variant) => TrainAndRoundTrip(variant);

    static void TrainAndRoundTrip(string variant)
    {
        var spec = ModelRegistry.Get(variant);
        using var scope = NewDisposeScope();
        var gen = new Generator(1);
        var images = torch.randn([2, .. ModelRegistry.ImageShape(spec)], generator: gen);
        using var dir = new TempDirectory();
        Tensor expected;
        using (var model = ModelRegistry.Create(spec))
        {
            // Its own scope: every p.grad read is a handle that keeps the gradient alive until it is disposed.
            using (NewDisposeScope()) TrainOneStep(variant, spec, model, images);
            model.eval();
            using (no_grad()) expected = model.forward(images);
            ModelCheckpoint.Save(dir.File("model.safetensors"), spec, model);
        }   // the trained model is freed before its copy is built

        var (loadedSpec, loaded) = ModelCheckpoint.LoadModel(dir.File("model.safetensors"));
        using (loaded)
        {
            Assert.Equal(spec.ConfigJson(), loadedSpec.ConfigJson());
            loaded.eval();
            using var _ = no_grad();
            var actual = loaded.forward(images);
            Assert.True(expected.eq(actual).all().item<bool>(), $"{variant}: outputs differ after the round trip by {(expected - actual).abs().max().item<float>()}");
        }
    }

    /// <summary>Forward and backward on the batch; every parameter must hold a finite gradient. The gradients are
    /// dropped before returning (with the scope around this call, their storage goes too).</summary>
    static void TrainOneStep(string variant, ModelSpec spec, nn.Module<Tensor, Tensor> model, Tensor images)
    {
        model.train();
        var logits = model.forward(images);
        int classes = spec.Vit?.NumClasses ?? spec.ConvNeXt!.NumClasses;
        Assert.Equal(new long[] { 2, classes }, logits.shape);
        var labels = torch.tensor(new long[] { 0, 1 });
        nn.functional.cross_entropy(logits, labels).backward();

        var missing = new List<string>();
        foreach (var (name, p) in model.named_parameters())
        {
            if (p.grad is null) { missing.Add($"{name}: no gradient"); continue; }
            if (!p.grad.isfinite().all().item<bool>()) missing.Add($"{name}: non-finite gradient");
        }
        Assert.True(missing.Count == 0, $"{variant}: {string.Join("; ", missing)}");
        foreach (var p in model.parameters()) p.grad = null;
    }
}
