using Jetpack.Model.Data.Augment;
using static TorchSharp.torch;

namespace Jetpack.Model.Tests.Data.Augment;

/// <summary>Soft-target cross-entropy (spec §7.2) against torch's own label-smoothed cross-entropy.</summary>
public sealed class SoftTargetCrossEntropyTests
{
    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    [InlineData(0.3)]
    public void EqualsTorchCrossEntropyWithLabelSmoothing(double epsilon)
    {
        using var scope = NewDisposeScope();
        using var g = new Generator(21);
        var logits = (randn([8, 13], generator: g) * 3).requires_grad_();
        var labels = randint(0, 13, [8], generator: g);
        var ours = SoftTargetCrossEntropy.Loss(logits, LabelSmoothing.Targets(labels, 13, epsilon));
        var reference = nn.functional.cross_entropy(logits, labels, label_smoothing: epsilon);
        Assert.Equal(reference.item<float>(), ours.item<float>(), 5);
        var gradOurs = autograd.grad([ours], [logits])[0];
        var gradReference = autograd.grad([reference], [logits])[0];
        Assert.True(gradOurs.allclose(gradReference, rtol: 1e-5, atol: 1e-7));
    }

    [Fact]
    public void RejectsMismatchedShapes()
    {
        using var scope = NewDisposeScope();
        Assert.Throws<ArgumentException>(() => SoftTargetCrossEntropy.Loss(zeros(2, 3), zeros(2, 4)));
    }
}
