using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Moe;
using Jetpack.Model.Torch;

namespace Jetpack.Model.Tests.Moe;

/// <summary>
/// StackedLinear's hand-written backward (weight gradient accumulated straight into .grad, issue 21)
/// against autograd through the plain ops y = x·Wᵀ + b, on copies of the same leaves.
/// </summary>
public class StackedLinearTests
{
    /// <summary>(experts, tokens per expert, in, out): odd sizes, one token, V-JetMoE-T's core fc1 and fc2 and universal bank.</summary>
    public static TheoryData<int, int, int, int> Shapes => new()
    {
        { 3, 5, 7, 11 }, { 4, 1, 16, 8 }, { 2, 33, 19, 64 }, { 98, 32, 192, 768 }, { 98, 32, 768, 192 }, { 196, 32, 192, 192 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Fp32GradientsEqualAutogradsWithAndWithoutTheGemmKernel(int e, int t, int din, int dout)
    {
        foreach (bool kernel in new[] { true, false })
            foreach (bool existingGrad in new[] { true, false })
                AssertMatchesAutograd(e, t, din, dout, ScalarType.Float32, kernel, existingGrad, tolerance: 1e-5);
    }

    [Theory]
    [InlineData(3, 5, 7, 11)]
    [InlineData(98, 32, 192, 768)]
    public void Bf16GradientsEqualAutogradsToBf16Rounding(int e, int t, int din, int dout)
    {
        // bf16 keeps 8 mantissa bits: the two sides sum the same products in different orders and
        // each rounds its result once, so they may differ by a couple of bf16 ulps (2⁻⁸ of the value).
        AssertMatchesAutograd(e, t, din, dout, ScalarType.BFloat16, kernel: true, existingGrad: false, tolerance: 2e-2);
        AssertMatchesAutograd(e, t, din, dout, ScalarType.BFloat16, kernel: true, existingGrad: true, tolerance: 2e-2);
    }

    [Fact]
    public void TheKernelIsThereWhereLibtorchCarriesMkl()
    {
        // The x64 Linux libtorch this repo builds against links MKL; if this fails the fast path silently went away.
        if (OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64)
            Assert.True(BatchedGemm.Available, "cblas_sgemm_batch not found in libtorch_cpu");
    }

    [Fact]
    public void TheKernelAccumulatesAProductOfTransposedA()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(5);
        var a = torch.randn([3, 6, 4], generator: gen);                              // [b, k, m]
        var b = torch.randn([3, 6, 5], generator: gen);                              // [b, k, n]
        var c = torch.randn([3, 4, 5], generator: gen);                              // [b, m, n]
        var expected = c + torch.bmm(a.transpose(1, 2), b);
        if (!BatchedGemm.Applies(c, a, b)) return;                                   // no MKL here: the torch path is all there is
        BatchedGemm.AccumulateTransposedA(c, a, b);
        Assert.True((c - expected).abs().max().item<float>() < 1e-5);
        Assert.False(BatchedGemm.Applies(c, a.transpose(1, 2), b));                 // not contiguous
        Assert.False(BatchedGemm.Applies(c.to(ScalarType.BFloat16), a, b));          // not fp32
    }

    static void AssertMatchesAutograd(int e, int t, int din, int dout, ScalarType dtype, bool kernel, bool existingGrad, double tolerance)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator((ulong)(e * 1000 + t * 100 + din + dout));
        using var layer = new StackedLinear(e, din, dout, null);
        using (no_grad())
        {
            layer.weight.copy_(torch.randn([e, dout, din], generator: gen) / Math.Sqrt(din));
            layer.bias.copy_(torch.randn([e, dout], generator: gen));
        }
        layer.to(dtype);
        var w = layer.weight.detach().clone().requires_grad_();                      // the reference's leaves
        var bias = layer.bias.detach().clone().requires_grad_();
        if (existingGrad)                                                            // accumulation, not overwrite
        {
            var gw0 = torch.randn([e, dout, din], generator: gen).to(dtype);
            var gb0 = torch.randn([e, dout], generator: gen).to(dtype);
            layer.weight.grad = gw0.clone(); layer.bias.grad = gb0.clone();
            w.grad = gw0.clone(); bias.grad = gb0.clone();
        }
        var x = torch.randn([e, t, din], generator: gen).to(dtype);
        var gy = torch.randn([e, t, dout], generator: gen).to(dtype);
        var xOurs = x.clone().requires_grad_();
        var xRef = x.clone().requires_grad_();

        bool before = BatchedGemm.Enabled;
        BatchedGemm.Enabled = kernel;
        try
        {
            var y = layer.forward(xOurs);
            y.backward([gy]);
            var yRef = StackedLinear.ForwardTensorOps(xRef, w, bias);
            yRef.backward([gy]);
            string where = $"{dtype} [{e}, {t}, {din}]→{dout}, kernel {kernel}, existing grad {existingGrad}";
            AssertClose(yRef, y, tolerance, $"output, {where}");
            AssertClose(xRef.grad!, xOurs.grad!, tolerance, $"input grad, {where}");
            AssertClose(w.grad!, layer.weight.grad!, tolerance, $"weight grad, {where}");
            AssertClose(bias.grad!, layer.bias.grad!, tolerance, $"bias grad, {where}");
            Assert.True(layer.weight.grad!.is_contiguous(), $"weight grad keeps the parameter's layout, {where}");
        }
        finally { BatchedGemm.Enabled = before; }
    }

    /// <summary>max |actual − expected| ≤ tolerance · max |expected| (and the reference is not all zeros, so a dropped gradient fails).</summary>
    static void AssertClose(Tensor expected, Tensor actual, double tolerance, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        var e = expected.detach().to(ScalarType.Float32);
        var a = actual.detach().to(ScalarType.Float32);
        double scale = e.abs().max().item<float>();
        Assert.True(scale > 0, $"{what}: the reference is all zeros");
        double err = (a - e).abs().max().item<float>();
        Assert.True(err <= tolerance * scale, $"{what}: max |Δ| = {err:E3}, {err / scale:E3} of the reference's scale {scale:E3}");
    }
}
