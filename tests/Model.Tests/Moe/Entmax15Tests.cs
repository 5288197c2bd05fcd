using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Moe;

namespace Jetpack.Model.Tests.Moe;

public class Entmax15Tests
{
    [Fact]
    public void RowsSumToOneAndAreNonNegative()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(7);
        var z = torch.randn([64, 294], generator: gen) * 3;
        var p = Entmax15.Apply(z);
        Assert.True(p.min().item<float>() >= 0);
        var sums = p.sum(-1);
        Assert.True((sums - 1).abs().max().item<float>() < 1e-5, $"row sums off by {(sums - 1).abs().max().item<float>()}");
    }

    [Fact]
    public void IsSparseWhereOneLogitDominates()
    {
        using var scope = NewDisposeScope();
        // z/2 gap of 1.5 ≥ 1 leaves only the top entry: p = [1, 0, 0, 0].
        var p = Entmax15.Apply(torch.tensor(new[] { 3f, 0, 0, 0 }).unsqueeze(0));
        Assert.Equal(new[] { 1f, 0, 0, 0 }, p.data<float>().ToArray());
        // Equal logits give the uniform distribution (no sparsity).
        var u = Entmax15.Apply(torch.zeros(1, 5));
        Assert.All(u.data<float>().ToArray(), v => Assert.Equal(0.2f, v, 6));
    }

    [Fact]
    public void MatchesAHandComputedCase()
    {
        using var scope = NewDisposeScope();
        // z = [1, 0]: halved [0.5, 0]; τ* = 0.25 − √(0.4375) ⇒ p = (0.5 − τ*)², τ*²  (spec §3.3).
        double tau = 0.25 - Math.Sqrt(0.4375);
        var p = Entmax15.Apply(torch.tensor(new[] { 1.0, 0.0 }).unsqueeze(0)).data<double>().ToArray();
        Assert.Equal(Math.Pow(0.5 - tau, 2), p[0], 12);
        Assert.Equal(tau * tau, p[1], 12);
    }

    [Fact]
    public void GradientMatchesFiniteDifferences()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(11);
        var z0 = torch.randn([3, 12], ScalarType.Float64, generator: gen);
        var u = torch.randn([3, 12], ScalarType.Float64, generator: gen);
        var z = z0.clone().requires_grad_(true);
        (Entmax15.Apply(z) * u).sum().backward();
        var analytic = z.grad!.clone();

        const double h = 1e-6;
        var numeric = torch.zeros_like(z0);
        using (no_grad())
        {
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 12; c++)
                {
                    var plus = z0.clone(); plus[r, c] += h;
                    var minus = z0.clone(); minus[r, c] -= h;
                    double f = (Entmax15.Forward(plus) * u).sum().item<double>() - (Entmax15.Forward(minus) * u).sum().item<double>();
                    numeric[r, c] = f / (2 * h);
                }
        }
        double err = (analytic - numeric).abs().max().item<double>();
        Assert.True(err < 1e-6, $"max |analytic − numeric| = {err}");
    }

    [Fact]
    public void HandWrittenBackwardEqualsAutogradThroughTheClosedForm()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(5);
        var z = torch.randn([4, 50], ScalarType.Float64, generator: gen).requires_grad_(true);
        var u = torch.randn([4, 50], ScalarType.Float64, generator: gen);
        (Entmax15.Forward(z) * u).sum().backward();   // autograd through sort/cumsum/gather/clamp
        var viaAutograd = z.grad!.clone();
        z.grad!.zero_();
        (Entmax15.Apply(z) * u).sum().backward();     // the hand-written backward
        Assert.True((viaAutograd - z.grad!).abs().max().item<double>() < 1e-12);
    }
}

/// <summary>The sort-free CPU kernel against the sorted form in tensor ops (spec §3.3).</summary>
[Trait("Kernel", "Cpu")]  // also run without AVX-512 (scripts/test.sh)
public class Entmax15KernelTests
{
    [Theory]
    [InlineData(1, 0.3)]
    [InlineData(2, 1.0)]
    [InlineData(7, 3.0)]
    [InlineData(294, 0.3)]
    [InlineData(294, 1.0)]
    [InlineData(294, 10.0)]
    [InlineData(1176, 2.0)]
    [InlineData(5000, 50.0)]
    public void EqualsTheSortedFormInTensorOps(int k, double scale)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator((ulong)(k * 31 + (int)(scale * 10)));
        var z = torch.randn([257, k], generator: gen) * scale;
        z[0] = torch.zeros(k);                                             // all equal: uniform
        if (k > 3)
        {
            z[1, 0] = float.NegativeInfinity; z[2, 1] = z[2, 2];            // -inf entries and ties
            z[3] = torch.zeros(k); z[3, 0] = 2;                              // the rest exactly at τ* = −1: p = e₀
        }
        Assert.True(Entmax15Kernel.Applies(z));
        var fast = Entmax15Kernel.Forward(z);
        var sorted = Entmax15.ForwardTensorOps(z);
        if (k > 3)
        {
            // Row 3 exactly: the sorted form's fp32 cumulative sums over K − 1 entries at τ* miss it by ~K·ε.
            var e0 = torch.zeros(k); e0[0] = 1;
            Assert.True((fast[3] - e0).abs().max().item<float>() < 1e-6, $"tie row: {fast[3, 0].item<float>()}");
            sorted[3] = fast[3];
        }
        double err = (fast - sorted).abs().max().item<float>();
        Assert.True(err < 1e-6, $"K={k}, scale={scale}: max |kernel − sorted| = {err}");
        Assert.True((fast.sum(-1) - 1).abs().max().item<float>() < 1e-5);
    }

    [Fact]
    public void Bf16RowsAreTheFp32RowsRounded()
    {
        using var scope = NewDisposeScope();
        var z = (torch.randn([64, 294], generator: new Generator(9)) * 2).to(ScalarType.BFloat16);
        Assert.True(Entmax15Kernel.Applies(z));
        var p = Entmax15Kernel.Forward(z);
        Assert.Equal(ScalarType.BFloat16, p.dtype);
        var viaFp32 = Entmax15Kernel.Forward(z.to(ScalarType.Float32)).to(ScalarType.BFloat16);
        Assert.True(p.equal(viaFp32).all().item<bool>());
        var sorted = Entmax15.ForwardTensorOps(z.to(ScalarType.Float32));
        Assert.True((p.to(ScalarType.Float32) - sorted).abs().max().item<float>() < 4e-3);     // bf16 rounding of p ≤ 1
    }

    [Fact]
    public void NonFiniteRowsBecomeNaNLikeTheTensorPath()
    {
        using var scope = NewDisposeScope();
        var z = torch.tensor(new[] { 0f, float.NaN, 1f, 2f, float.PositiveInfinity, 0f }).reshape(2, 3);
        var p = Entmax15Kernel.Forward(z);
        Assert.True(p.isnan().all().item<bool>(), string.Join(", ", p.data<float>().ToArray()));
    }

    [Fact]
    public void GradientThroughTheKernelEqualsTheTensorPath()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(3);
        var z0 = torch.randn([8, 20, 294], generator: gen);
        var u = torch.randn([8, 20, 294], generator: gen);
        var a = z0.clone().requires_grad_(true);
        (Entmax15.Apply(a) * u).sum().backward();                          // kernel forward, analytic backward
        var b = z0.clone().requires_grad_(true);
        (Entmax15.ForwardTensorOps(b) * u).sum().backward();               // autograd through the sorted form
        Assert.True((a.grad! - b.grad!).abs().max().item<float>() < 1e-5);
    }
}
