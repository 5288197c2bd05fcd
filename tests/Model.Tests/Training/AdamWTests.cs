using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;

namespace Jetpack.Model.Tests.Training;

public class AdamWTests
{
    /// <summary>
    /// The torch-ops path follows the same trajectory as TorchSharp's optim.AdamW (the fused pass is held
    /// to the torch-ops path over 100 steps in FusedAdamWTests; here the forward feeds each step's update
    /// back into the next gradients, which amplifies last-bit differences beyond 1e-6 at lr 1e-2).
    /// </summary>
    [Fact]
    public void MatchesTorchSharpsAdamWOverSeveralSteps()
    {
        using var a = ModelRegistry.Create("v_jetmoe_fmnist");
        using var b = ModelRegistry.Create("v_jetmoe_fmnist");
        b.load_state_dict(a.state_dict());
        a.eval(); b.eval();   // deterministic forward: no dropout, no noise
        using var ours = new AdamW(a.parameters(), lr: 1e-2, weightDecay: 0.05, fused: false);
        using var theirs = optim.AdamW(b.parameters(), lr: 1e-2, weight_decay: 0.05);
        var gen = new Generator(3);
        using var images = torch.randn([4, 1, 28, 28], generator: gen);
        using var labels = torch.tensor(new long[] { 1, 3, 5, 7 });
        for (int step = 0; step < 4; step++)
        {
            using var scope = NewDisposeScope();
            ours.ZeroGrad(); theirs.zero_grad();
            nn.functional.cross_entropy(a.forward(images), labels).backward();
            nn.functional.cross_entropy(b.forward(images), labels).backward();
            ours.Step(); theirs.step();
        }
        var pa = a.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in b.named_parameters())
        {
            double err = (pa[name] - p).abs().max().item<float>();
            Assert.True(err < 1e-6, $"{name}: max |Δ| = {err}");
        }
        Assert.Equal(4, ours.StepCount);
    }

    [Fact]
    public void GroupsApplyTheirOwnLrScaleAndWeightDecay()
    {
        using var scope = NewDisposeScope();
        var w = new TorchSharp.Modules.Parameter(torch.ones(3));
        var frozen = new TorchSharp.Modules.Parameter(torch.ones(3));
        using var opt = new AdamW([new ParamGroup("decayed", [w], 1.0, 0.5), new ParamGroup("frozen", [frozen], 0.0, 0.5)], lr: 0.1);
        w.grad = torch.zeros(3);
        frozen.grad = torch.ones(3);
        opt.Step();
        // zero gradient: only decoupled decay moves w: 1 · (1 − 0.1·0.5) = 0.95; lr scale 0 freezes the other
        Assert.All(w.data<float>().ToArray(), v => Assert.Equal(0.95f, v, 6));
        Assert.All(frozen.data<float>().ToArray(), v => Assert.Equal(1f, v));
    }

    [Fact]
    public void RefusesAParameterInTwoGroups()
    {
        var p = new TorchSharp.Modules.Parameter(torch.ones(2));
        var e = Assert.Throws<ArgumentException>(() => new AdamW([new ParamGroup("a", [p]), new ParamGroup("b", [p])], lr: 1));
        Assert.Contains("'b'", e.Message);
    }
}
