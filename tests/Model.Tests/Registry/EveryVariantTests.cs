using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Registry;
using Jetpack.Model.Tests.Checkpoints;

namespace Jetpack.Model.Tests.Registry;

/// <summary>Driven by the registry: every variant runs forward and backward on a small batch, every
/// parameter receives a finite gradient, and a save → load round trip gives bit-identical outputs.
/// (One test per variant so the big ones are built once: Soft MoE-S needs ~17 GB here.)</summary>
public class EveryVariantTests
{
    public static TheoryData<string> Variants() => new(ModelRegistry.Names);

    [Theory]
    [MemberData(nameof(Variants))]
    public void TrainsAndRoundTripsThroughACheckpoint(string variant)
    {
        var spec = ModelRegistry.Get(variant);
        using var model = ModelRegistry.Create(spec);
        model.train();
        using var scope = NewDisposeScope();
        var gen = new Generator(1);
        var images = torch.randn([2, .. ModelRegistry.ImageShape(spec)], generator: gen);
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

        foreach (var p in model.parameters()) p.grad = null;   // free the gradients before a second copy of the model exists
        model.eval();
        var expected = model.forward(images);
        using var dir = new TempDirectory();
        ModelCheckpoint.Save(dir.File("model.safetensors"), spec, model);
        var (loadedSpec, loaded) = ModelCheckpoint.LoadModel(dir.File("model.safetensors"));
        using (loaded)
        {
            Assert.Equal(spec.ConfigJson(), loadedSpec.ConfigJson());
            loaded.eval();
            var actual = loaded.forward(images);
            Assert.True(expected.eq(actual).all().item<bool>(), $"{variant}: outputs differ after the round trip by {(expected - actual).abs().max().item<float>()}");
        }
    }
}
