using Jetpack.Model.Training;
using TorchSharp;
using TorchSharp.Modules;

namespace Jetpack.Model.Tests.Training;

[Trait("Kernel", "Cpu")]  // also run without AVX-512 (scripts/test.sh)
public class GradClipTests
{
    [Fact]
    public void ReturnsTheGlobalNormAndScalesGradientsToMaxNorm()
    {
        using var scope = torch.NewDisposeScope();
        var a = new Parameter(torch.zeros(2));
        var b = new Parameter(torch.zeros(2, 2));
        var none = new Parameter(torch.zeros(3));            // no gradient: ignored
        a.grad = torch.tensor(new float[] { 3, 4 });
        b.grad = torch.tensor(new float[] { 0, 12, 0, 0 }).reshape(2, 2);
        double norm = GradClip.ClipByGlobalNorm([a, b, none], maxNorm: 6.5);
        Assert.Equal(13.0, norm, 5);                          // √(9 + 16 + 144)
        double coef = 6.5 / (13 + 1e-6);
        Assert.Equal(new[] { 3 * coef, 4 * coef }, a.grad.data<float>().ToArray().Select(v => (double)v), new ToleranceComparer(1e-5));
        Assert.Equal(12 * coef, b.grad[0, 1].item<float>(), 5);
        Assert.Null(none.grad);
    }

    [Fact]
    public void SmallGradientsAreLeftAlone()
    {
        using var scope = torch.NewDisposeScope();
        var a = new Parameter(torch.zeros(2));
        a.grad = torch.tensor(new float[] { 0.3f, 0.4f });
        Assert.Equal(0.5, GradClip.ClipByGlobalNorm([a], 5.0), 6);
        Assert.Equal(new[] { 0.3f, 0.4f }, a.grad.data<float>().ToArray());
    }

    private sealed class ToleranceComparer(double tol) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tol;
        public int GetHashCode(double obj) => 0;
    }
}
