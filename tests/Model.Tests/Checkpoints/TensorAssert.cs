using TorchSharp;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>Exact tensor comparison: same dtype, same shape, same bytes (so NaN payloads count).</summary>
public static class TensorAssert
{
    public static void Identical(torch.Tensor expected, torch.Tensor actual)
    {
        Assert.Equal(expected.dtype, actual.dtype);
        Assert.Equal(expected.shape, actual.shape);
        using var expectedCpu = expected.cpu();
        using var actualCpu = actual.cpu();
        using var e = expectedCpu.contiguous();
        using var a = actualCpu.contiguous();
        Assert.True(e.bytes.SequenceEqual(a.bytes), "tensor bytes differ");
    }
}
