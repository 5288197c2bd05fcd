using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Layers;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Tests.Training;

public class ModelRandomnessTests
{
    /// <summary>With one attached generator, a training-mode forward (dropout, DropPath, routing noise)
    /// is a pure function of the generator's state: saving and restoring it replays the same draws.</summary>
    [Fact]
    public void RestoringTheGeneratorStateReplaysDropoutAndNoise()
    {
        using var model = ModelRegistry.Create("v_jetmoe_fmnist");
        model.train();
        var gen = new Generator(123);
        Assert.True(ModelRandomness.Attach(model, gen) >= 6 + 3 + 6);   // blocks, MoE layers, expert banks
        using var scope = NewDisposeScope();
        var x = torch.randn([4, 1, 28, 28], generator: new Generator(1));
        var state = gen.get_state();
        var a = model.forward(x);
        var b = model.forward(x);
        gen.set_state(state);
        var c = model.forward(x);
        Assert.False(a.eq(b).all().item<bool>());                       // the draws differ step to step
        Assert.True(a.eq(c).all().item<bool>());                        // and replay exactly
    }
}
