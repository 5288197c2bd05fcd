using Jetpack.Model.Registry;
using Jetpack.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Tests.Training;

public class MixedPrecisionTests
{
    /// <summary>One bf16-policy AdamW step lands close to the same step taken in fp32.</summary>
    [Theory]
    [InlineData("vit_fmnist_t")]
    [InlineData("v_jetmoe_fmnist")]
    public void Bf16StepTracksAnFp32Step(string variant)
    {
        var spec = ModelRegistry.Get(variant);
        using var master = ModelRegistry.Create(variant);
        using var reference = ModelRegistry.Create(variant);
        reference.load_state_dict(master.state_dict());
        master.eval(); reference.eval();                  // deterministic: no dropout, drop path or noise
        using var policy = new Bf16Forward(master, ModelRegistry.Create(variant));
        using var ours = new AdamW(ParamGroups.Build(spec, master, new TrainerOptions { LayerDecay = 0.6 }), lr: 1e-3);
        using var theirs = new AdamW(ParamGroups.Build(spec, reference, new TrainerOptions { LayerDecay = 0.6 }), lr: 1e-3);

        var gen = new Generator(11);
        using var images = torch.randn([8, 1, 28, 28], generator: gen);
        using var labels = torch.tensor(new long[] { 0, 1, 2, 3, 4, 5, 6, 7 });
        var before = master.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

        float loss = policy.ForwardBackward(images, logits =>
        {
            Assert.Equal(ScalarType.Float32, logits.dtype);
            return nn.functional.cross_entropy(logits, labels);
        });
        using (var scope = NewDisposeScope())
            nn.functional.cross_entropy(reference.forward(images), labels).backward();
        foreach (var (name, p) in master.named_parameters())
        {
            Assert.Equal(ScalarType.Float32, p.dtype);
            Assert.NotNull(p.grad);
            Assert.Equal(ScalarType.Float32, p.grad!.dtype);
            Assert.True(p.grad.isfinite().all().item<bool>(), $"{name}: non-finite gradient");
        }
        Assert.True(float.IsFinite(loss) && loss > 0);
        ours.Step(); theirs.Step();
        policy.SyncWeights();

        // Adam's first step moves each weight by ≈ lr·scale·sign(g); bf16 may flip the sign of tiny
        // gradients, so compare the whole update: the moves must agree in direction overall.
        var refParams = reference.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        double dot = 0, n1 = 0, n2 = 0;
        foreach (var (name, p) in master.named_parameters())
        {
            using var d1 = (p - before[name]).to(ScalarType.Float64);
            using var d2 = (refParams[name] - before[name]).to(ScalarType.Float64);
            dot += (d1 * d2).sum().item<double>();
            n1 += (d1 * d1).sum().item<double>();
            n2 += (d2 * d2).sum().item<double>();
            Assert.Equal(ScalarType.Float32, p.dtype);
        }
        double cosine = dot / Math.Sqrt(n1 * n2);
        Assert.True(cosine > 0.9, $"cosine between the bf16 and fp32 updates = {cosine:F4}");
        Assert.InRange(Math.Sqrt(n1 / n2), 0.9, 1.1);
        foreach (var t in before.Values) t.Dispose();
    }

    /// <summary>In training mode (dropout, drop path, routing noise) the shadow really computes in bf16.</summary>
    [Fact]
    public void TrainingModeRunsInBf16WithFiniteFp32Gradients()
    {
        using var master = ModelRegistry.Create("v_jetmoe_fmnist");
        master.train();
        using var policy = new Bf16Forward(master, ModelRegistry.Create("v_jetmoe_fmnist"));
        using var images = torch.randn([4, 1, 28, 28], generator: new Generator(5));
        using var labels = torch.tensor(new long[] { 1, 2, 3, 4 });
        using (var scope = NewDisposeScope())
            Assert.Equal(ScalarType.BFloat16, policy.Shadow.forward(images.to(ScalarType.BFloat16)).dtype);
        float loss = policy.ForwardBackward(images, l => nn.functional.cross_entropy(l, labels));
        Assert.True(float.IsFinite(loss));
        Assert.All(master.parameters(), p =>
        {
            Assert.Equal(ScalarType.Float32, p.grad!.dtype);
            Assert.True(p.grad.isfinite().all().item<bool>());
        });
        Assert.All(policy.Shadow.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
    }

    [Fact]
    public void GradientsAccumulateOverMicroBatches()
    {
        using var master = ModelRegistry.Create("vit_fmnist_t");
        master.eval();
        using var policy = new Bf16Forward(master, ModelRegistry.Create("vit_fmnist_t"));
        using var images = torch.randn([4, 1, 28, 28], generator: new Generator(5));
        using var labels = torch.tensor(new long[] { 1, 2, 3, 4 });
        policy.ForwardBackward(images, l => nn.functional.cross_entropy(l, labels));
        var once = master.parameters().Select(p => p.grad!.clone()).ToList();
        policy.ForwardBackward(images, l => nn.functional.cross_entropy(l, labels));
        foreach (var (p, g) in master.parameters().Zip(once))
        {
            using var twice = g * 2;
            Assert.True(p.grad!.allclose(twice, rtol: 1e-5, atol: 1e-7));
            g.Dispose();
        }
    }
}
