using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Data;
using Jetpack.Model.Layers;

namespace Jetpack.Model.Tests.Layers;

[Trait("Kernel", "Cpu")]  // also run without AVX-512 (scripts/test.sh)
public class DropoutMaskTests
{
    const ulong Gamma = 0x9E3779B97F4A7C15UL;

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void EveryElementIsTheScalarSplitMix64Draw(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        const long n = 3 * (1 << 16) + 13;                 // several work items and a ragged tail
        const double keep = 0.6;
        const ulong seed = 0xDEADBEEF12345UL;
        var mask = torch.empty([n], dtype);
        DropoutMask.Fill(mask, seed, keep);
        var got = mask.to(ScalarType.Float32).data<float>().ToArray();
        ulong below = (ulong)(keep * 18446744073709551616.0);
        float on = (float)torch.tensor(1 / keep, ScalarType.Float32).to(dtype).to(ScalarType.Float32).item<float>();
        for (long i = 0; i < n; i++)
        {
            float want = SplitMix64.Mix(unchecked(seed + (ulong)(i + 1) * Gamma)) < below ? on : 0f;
            if (got[i] != want) Assert.Fail($"element {i}: {got[i]}, want {want}");
        }
    }

    [Fact]
    public void KeepsTheRightShareAndIsAPureFunctionOfTheGenerator()
    {
        using var scope = NewDisposeScope();
        var like = torch.empty([1000, 1000]);
        var a = DropoutMask.Draw(like, 0.6, new Generator(42));
        var b = DropoutMask.Draw(like, 0.6, new Generator(42));
        var c = DropoutMask.Draw(like, 0.6, new Generator(43));
        Assert.True(a.equal(b).all().item<bool>());
        Assert.False(a.equal(c).all().item<bool>());
        double kept = (a > 0).sum().item<long>();
        // Binomial(1e6, 0.6): σ = 490; 5σ bounds.
        Assert.InRange(kept, 600_000 - 2_450, 600_000 + 2_450);
        Assert.Equal(1 / 0.6, a.max().item<float>(), 5);
        // Neighbours are independent: P(both kept) ≈ 0.36.
        double pairs = ((a[.., 1..] > 0) & (a[.., ..^1] > 0)).sum().item<long>() / 999_000.0;
        Assert.InRange(pairs, 0.36 - 0.003, 0.36 + 0.003);
    }

    [Fact]
    public void DropoutScalesSurvivorsAndPassesGradientsThroughTheMask()
    {
        using var scope = NewDisposeScope();
        var x = torch.ones([64, 128]).requires_grad_(true);
        var y = Stochastic.Dropout(x, 0.4, training: true, new Generator(5));
        y.sum().backward();
        var values = y.detach().unique().output.data<float>().ToArray();
        Assert.Equal(new[] { 0f, 1 / 0.6f }, values);
        Assert.True(x.grad!.equal(y.detach()).all().item<bool>());          // d(x·mask)/dx = mask
    }
}
