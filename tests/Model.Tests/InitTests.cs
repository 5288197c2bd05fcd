using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Layers;

namespace Jetpack.Model.Tests;

public class InitTests
{
    [Fact]
    public void TruncNormalHasTheTruncatedDistributionsMoments()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(0);
        var t = torch.empty(1000, 1000);
        Init.TruncNormal(t, 0.02);
        // N(0, σ²) truncated at ±2σ has std σ·0.8796; bounds are ±2σ; mean 0.
        Assert.InRange(t.std().item<float>(), 0.02 * 0.8796 * 0.995, 0.02 * 0.8796 * 1.005);
        Assert.InRange(t.mean().item<float>(), -1e-4, 1e-4);
        Assert.True(t.abs().max().item<float>() <= 0.04f);
        Assert.True(t.abs().max().item<float>() > 0.039f);
    }

    [Fact]
    public void MetaTensorsAreLeftAlone()
    {
        var t = torch.empty(new long[] { 4, 4 }, device: META);
        Init.TruncNormal(t);
        Init.Orthogonal(t, 4, 4);
        Assert.Equal(DeviceType.META, t.device_type);
    }
}
