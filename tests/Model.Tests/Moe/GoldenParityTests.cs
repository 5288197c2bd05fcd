using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Models;
using Jetpack.Model.Moe;

namespace Jetpack.Model.Tests.Moe;

/// <summary>
/// Parity with an independent PyTorch implementation written from the spec (tests/golden/:
/// jetpack_ref.py, make_golden.py). Same weights, input and noise in; output, routing weights and
/// the input and parameter gradients must agree to 1e-5 relative to each reference tensor's scale.
/// </summary>
public class GoldenParityTests
{
    const double Tolerance = 1e-5;

    static string Golden(string file) => Path.Combine(AppContext.BaseDirectory, "golden", file);

    static void LoadParameters(SafetensorsReader golden, nn.Module layer)
    {
        using var _ = no_grad();
        foreach (var (name, p) in layer.named_parameters())
        {
            using var t = golden.ReadTensor(name);
            Assert.Equal(t.shape, p.shape);
            p.copy_(t);
        }
    }

    static void AssertClose(SafetensorsReader golden, string name, Tensor actual)
    {
        using var expected = golden.ReadTensor(name);
        Assert.Equal(expected.shape, actual.shape);
        double scale = Math.Max(expected.abs().max().item<float>(), 1e-12);
        double err = (actual.detach() - expected).abs().max().item<float>();
        Assert.True(err <= Tolerance * scale, $"{name}: max |Δ| = {err:E3}, {err / scale:E3} of the reference's scale {scale:E3}");
    }

    [Fact]
    public void SpheroMoEMatchesThePyTorchReference()
    {
        using var golden = SafetensorsReader.Open(Golden("spheromoe_golden.safetensors"));
        int dim = int.Parse(golden.Metadata["dim"]);
        var config = new MoeConfig
        {
            CoreExperts = int.Parse(golden.Metadata["num_core"]), UniversalExperts = int.Parse(golden.Metadata["num_univ"]),
            SlotsPerExpert = int.Parse(golden.Metadata["slots_per_expert"]), ExpertDropout = 0,
        };
        Assert.Equal(4 * dim, config.CoreHidden(dim));
        using var layer = new SpheroMoE(dim, config, dropPath: 0);
        layer.train();
        LoadParameters(golden, layer);

        using var scope = NewDisposeScope();
        var x = golden.ReadTensor("input.x").requires_grad_(true);
        var noise = golden.ReadTensor("input.noise");
        var y = layer.Forward(x, noise);
        (y * golden.ReadTensor("input.grad_output")).sum().backward();

        AssertClose(golden, "output.y", y);
        AssertClose(golden, "grad.x", x.grad!);
        foreach (var (name, p) in layer.named_parameters()) AssertClose(golden, "grad." + name, p.grad!);
        using (no_grad())
        {
            var (dispatch, combine) = layer.Route(x, noise);
            AssertClose(golden, "debug.dispatch", dispatch);
            AssertClose(golden, "debug.combine", combine);
        }
    }

    [Fact]
    public void SoftMoEMatchesThePyTorchReference()
    {
        using var golden = SafetensorsReader.Open(Golden("softmoe_golden.safetensors"));
        int dim = int.Parse(golden.Metadata["dim"]);
        int experts = int.Parse(golden.Metadata["num_experts"]);
        int hidden = int.Parse(golden.Metadata["hidden"]);
        var config = new MoeConfig
        {
            Kind = MoeKind.Soft, CoreExperts = experts, UniversalExperts = 0, CoreHiddenRatio = (double)hidden / dim,
            SlotsPerExpert = int.Parse(golden.Metadata["slots_per_expert"]), ExpertDropout = 0,
        };
        using var layer = new SoftMoE(dim, config, dropPath: 0);
        layer.train();
        LoadParameters(golden, layer);

        using var scope = NewDisposeScope();
        var x = golden.ReadTensor("input.x").requires_grad_(true);
        var y = layer.forward(x);
        (y * golden.ReadTensor("input.grad_output")).sum().backward();

        AssertClose(golden, "output.y", y);
        AssertClose(golden, "grad.x", x.grad!);
        foreach (var (name, p) in layer.named_parameters()) AssertClose(golden, "grad." + name, p.grad!);
    }

    [Fact]
    public void Entmax15MatchesThePyTorchReference()
    {
        using var golden = SafetensorsReader.Open(Golden("entmax15_golden.safetensors"));
        using var scope = NewDisposeScope();
        var z = golden.ReadTensor("input.z").requires_grad_(true);
        var p = Entmax15.Apply(z);
        (p * golden.ReadTensor("input.grad_output")).sum().backward();
        AssertClose(golden, "output.p", p);
        AssertClose(golden, "grad.z", z.grad!);
    }
}
