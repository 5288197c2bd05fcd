using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Layers;

namespace Jetpack.Model.Tests.Layers;

/// <summary>The routing noise (<see cref="Stochastic.Normal"/>): bf16 and fp16 on the CPU are the fp32 draw of the same generator, rounded.</summary>
public class StochasticNormalTests
{
    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void AReducedPrecisionDrawIsTheFp32DrawRounded(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var half = Stochastic.Normal([64, 197, 30], dtype, CPU, new Generator(17));
        var wide = Stochastic.Normal([64, 197, 30], ScalarType.Float32, CPU, new Generator(17));
        Assert.Equal(dtype, half.dtype);
        Assert.True(half.equal(wide.to(dtype)).all().item<bool>());
        var f = half.to(ScalarType.Float32);
        Assert.InRange(f.mean().item<float>(), -0.01, 0.01);                  // 378k draws: σ of the mean ≈ 0.0016
        Assert.InRange(f.std().item<float>(), 0.99, 1.01);
        // and the generator moved on as for an fp32 draw of that size
        var gen = new Generator(17);
        Stochastic.Normal([64, 197, 30], dtype, CPU, gen);
        var next = Stochastic.Normal([8], ScalarType.Float32, CPU, gen);
        var genWide = new Generator(17);
        Stochastic.Normal([64, 197, 30], ScalarType.Float32, CPU, genWide);
        Assert.True(next.equal(Stochastic.Normal([8], ScalarType.Float32, CPU, genWide)).all().item<bool>());
    }
}
