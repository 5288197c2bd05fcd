using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Tests.Registry;

/// <summary>Driven by the registry: every variant runs forward and backward on a small batch and
/// every parameter receives a finite gradient.</summary>
public class EveryVariantTests
{
    public static TheoryData<string> Variants() => new(ModelRegistry.Names);

    [Theory]
    [MemberData(nameof(Variants))]
    public void ForwardBackwardGivesEveryParameterAFiniteGradient(string variant)
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
    }
}
