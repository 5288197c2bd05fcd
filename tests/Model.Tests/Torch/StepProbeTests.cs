using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Registry;
using Jetpack.Model.Torch;

namespace Jetpack.Model.Tests.Torch;

/// <summary>The step breakdown's probe (issue 21): it reports every region in forward and backward and changes nothing.</summary>
public class StepProbeTests
{
    sealed class Recorder : IStepProbe
    {
        public List<string> Events { get; } = [];
        public void ForwardBegin(string region) => Events.Add($"f+{region}");
        public void ForwardEnd(string region) => Events.Add($"f-{region}");
        public void BackwardBegin(string region) => Events.Add($"b+{region}");
        public void BackwardEnd(string region) => Events.Add($"b-{region}");
    }

    [Fact]
    public void RegionsAreReportedInBothPassesAndGradientsAreUnchanged()
    {
        using var model = ModelRegistry.Create("v_jetmoe_fmnist");
        model.eval();                                                          // deterministic forward
        var gen = new Generator(4);
        using var images = torch.randn([2, 1, 28, 28], generator: gen);
        Dictionary<string, Tensor> Grads()
        {
            using var scope = NewDisposeScope();
            foreach (var p in model.parameters()) p.grad = null;
            model.forward(images).square().sum().backward();
            return model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone().DetachFromDisposeScope());
        }
        var plain = Grads();
        var recorder = new Recorder();
        Dictionary<string, Tensor> probed;
        using (StepProbe.Attach(recorder)) probed = Grads();
        // The marks add identity nodes, which may change the order autograd sums a tensor's gradient contributions in: float rounding only.
        foreach (var (name, g) in plain)
        {
            double err = (g - probed[name]).abs().max().item<float>(), scale = g.abs().max().item<float>();
            Assert.True(err <= 1e-5 * scale + 1e-12, $"{name}: the probe changed the gradient by {err} (max |g| {scale})");
        }
        foreach (var region in new[] { "attention", "mlp", "moe", "moe.routing", "moe.routing.logits", "moe.routing.softmax", "moe.routing.entmax", "moe.dispatch", "moe.experts", "moe.combine" })
            foreach (var kind in new[] { "f+", "f-", "b+", "b-" })
                Assert.Contains($"{kind}{region}", recorder.Events);
        Assert.True(recorder.Events.IndexOf("b+moe") < recorder.Events.LastIndexOf("b-moe"));
    }
}
