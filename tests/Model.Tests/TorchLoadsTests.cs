using TorchSharp;

namespace Jetpack.Model.Tests;

/// <summary>Proves the native TorchSharp library loads and computes on this machine
/// (on stock Debian 12 only after build/torchsharp-fix has repaired it).</summary>
public class TorchLoadsTests
{
    [Fact]
    public void MatmulComputesTheRightNumbers()
    {
        using var a = torch.tensor(new float[] { 1, 2, 3, 4 }, new long[] { 2, 2 });
        using var b = torch.tensor(new float[] { 5, 6, 7, 8 }, new long[] { 2, 2 });
        using var c = a.matmul(b);
        Assert.Equal(new float[] { 19, 22, 43, 50 }, c.data<float>().ToArray());
    }

    [Fact]
    public void AutogradRuns()
    {
        using var x = torch.tensor(new float[] { 3 }, requires_grad: true);
        using var y = (x * x).sum();
        y.backward();
        Assert.Equal(6f, x.grad!.item<float>());
    }

    [Fact]
    public void DeviceParsingNamesTheBadValue()
    {
        Assert.Equal(DeviceType.CPU, Jetpack.Model.Torch.Devices.Parse("cpu").type);
        var e = Assert.Throws<ArgumentException>(() => Jetpack.Model.Torch.Devices.Parse("tpu:7"));
        Assert.Contains("tpu:7", e.Message);
    }
}
