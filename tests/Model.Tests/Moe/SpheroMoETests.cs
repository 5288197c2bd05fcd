using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Models;
using Jetpack.Model.Moe;

namespace Jetpack.Model.Tests.Moe;

/// <summary>Behaviour of SpheroMoE beyond the golden parity: shapes, init, eval determinism, options.</summary>
public class SpheroMoETests
{
    static readonly MoeConfig Small = new() { CoreExperts = 3, UniversalExperts = 6, ExpertDropout = 0.4, MoeDropPathRate = 0.1 };

    [Fact]
    public void FourDimensionalInputEqualsTheFlattenedCall()
    {
        using var layer = new SpheroMoE(8, Small, dropPath: 0);
        layer.eval();
        using var scope = NewDisposeScope();
        var x = torch.randn(2, 3, 4, 8, generator: new Generator(1));
        var y4 = layer.forward(x);
        var y3 = layer.forward(x.reshape(2, 12, 8)).reshape(2, 3, 4, 8);
        Assert.True((y4 - y3).abs().max().item<float>() < 1e-6);
        Assert.Equal(x.shape, y4.shape);
    }

    [Fact]
    public void FreshRouterFollowsSpecInits()
    {
        using var layer = new SpheroMoE(16, Small with { CoreExperts = 8, UniversalExperts = 16 }, dropPath: 0);
        var p = layer.named_parameters().ToDictionary(t => t.name, t => t.parameter);
        using var scope = NewDisposeScope();
        var phi = p["phi"].reshape(24, 16);                                      // 24 slots > 16 dims: columns orthonormal, ΦᵀΦ = I
        Assert.True((phi.t().matmul(phi) - torch.eye(16)).abs().max().item<float>() < 1e-5);
        Assert.Equal(0.5f, p["scales.0"].item<float>());
        Assert.Equal(0.5f, p["scales.1"].item<float>());
        Assert.True(p["slot_norm.weight"].eq(1).all().item<bool>() && p["slot_norm.bias"].eq(0).all().item<bool>());
        // kaiming_uniform(a=√5) on [e, out, in]: bound 1/√(out·in) (spec §3.1)
        double bound = 1 / Math.Sqrt(64.0 * 16);
        Assert.True(p["core_experts.vit_fc1.weight"].abs().max().item<float>() <= bound);
        Assert.Equal([8, 64, 16], p["core_experts.vit_fc1.weight"].shape);
        Assert.Equal([16, 16, 16], p["univ_experts.vit_fc1.weight"].shape);
    }

    [Fact]
    public void EvalIsDeterministicUnlessNoiseInEvalIsSet()
    {
        using var scope = NewDisposeScope();
        var x = torch.randn(2, 5, 8, generator: new Generator(2));
        using var quiet = new SpheroMoE(8, Small, dropPath: 0.1);
        quiet.eval();
        Assert.True(quiet.forward(x).eq(quiet.forward(x)).all().item<bool>());
        using var noisy = new SpheroMoE(8, Small with { NoiseInEval = true }, dropPath: 0.1);
        noisy.eval();
        Assert.False(noisy.forward(x).eq(noisy.forward(x)).all().item<bool>());
    }

    [Fact]
    public void ExplicitNoiseIsScaledByOneOverTheExpertCount()
    {
        using var layer = new SpheroMoE(8, Small, dropPath: 0);
        layer.eval();
        using var scope = NewDisposeScope();
        var x = torch.randn(1, 4, 8, generator: new Generator(3));
        var xi = torch.randn(1, 4, 9, 1, generator: new Generator(4));
        var (d0, c0) = layer.Route(x, null);
        var (d1, _) = layer.Route(x, xi);
        // dispatch logits move by ξ·σ with σ = 1/9; recover it from log-softmax differences over tokens
        var shift = (d1.log() - d0.log()) - (d1.log() - d0.log()).mean([1], keepdim: true);
        var expected = xi.reshape(1, 4, 9) / 9.0;
        expected = expected - expected.mean([1], keepdim: true);
        Assert.True((shift - expected).abs().max().item<float>() < 1e-4);
        Assert.True((c0.sum(-1) - 1).abs().max().item<float>() < 1e-5);
    }

    [Theory]
    [InlineData(true, CombineNorm.Softmax, ExpertDropMode.PerExpert)]
    [InlineData(false, CombineNorm.Entmax15, ExpertDropMode.PerExpert)]
    [InlineData(true, CombineNorm.Entmax15, ExpertDropMode.Elementwise)]
    public void PaperLiteralOptionsTrain(bool singleTemperature, CombineNorm combine, ExpertDropMode drop)
    {
        var config = Small with { SingleTemperature = singleTemperature, Combine = combine, ExpertDrop = drop };
        using var layer = new SpheroMoE(8, config, dropPath: 0.1);
        layer.train();
        Assert.Equal(singleTemperature ? 1 : 2, layer.named_parameters().Count(p => p.name.StartsWith("scales.")));
        using var scope = NewDisposeScope();
        var x = torch.randn(2, 5, 8, generator: new Generator(5)).requires_grad_(true);
        layer.forward(x).sum().backward();
        Assert.True(x.grad!.isfinite().all().item<bool>());
        foreach (var (name, p) in layer.named_parameters()) Assert.True(p.grad is not null, name);
        if (combine == CombineNorm.Softmax)
        {
            var (_, c) = layer.Route(x.detach(), null);
            Assert.True(c.gt(0).all().item<bool>());      // softmax combine is dense, entmax is sparse
        }
    }

    [Fact]
    public void RejectsAWrongWidthWithTheShapeInTheMessage()
    {
        using var layer = new SpheroMoE(8, Small, dropPath: 0);
        var e = Assert.Throws<ArgumentException>(() => layer.forward(torch.zeros(2, 5, 7)));
        Assert.Contains("[2, 5, 7]", e.Message);
    }
}
