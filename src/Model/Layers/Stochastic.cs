using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Layers;

/// <summary>
/// Random masks drawn from an explicit generator when one is set, so each rank/thread has its own
/// stream (torch.manual_seed is process-global, ENVIRONMENT.md "Threads"); null falls back to the
/// global generator.
/// </summary>
public static class Stochastic
{
    /// <summary>
    /// Elementwise dropout: zero with probability p, scale survivors by 1/(1−p). On the CPU the mask
    /// comes from <see cref="DropoutMask"/> (one fast pass, seeded from the generator); elsewhere from bernoulli_.
    /// </summary>
    public static Tensor Dropout(Tensor x, double p, bool training, Generator? generator)
    {
        if (!training || p <= 0) return x.alias();
        if (DropoutMask.Applies(x))
        {
            using var scaled = DropoutMask.Draw(x, 1 - p, generator);
            return x * scaled;
        }
        if (generator is null) return nn.functional.dropout(x, p, training: true);
        using var mask = torch.empty_like(x).bernoulli_(1 - p, generator);
        return x * mask / (1 - p);
    }

    /// <summary>
    /// DropPath (stochastic depth): one Bernoulli(1−p) keep decision per sample along dim 0,
    /// scaled by 1/(1−p). Also used on stacked expert outputs (spec §3.2 step 9).
    /// </summary>
    public static Tensor DropPath(Tensor x, double p, bool training, Generator? generator)
    {
        if (!training || p <= 0) return x.alias();
        var shape = new long[x.dim()];
        shape[0] = x.shape[0];
        for (int i = 1; i < shape.Length; i++) shape[i] = 1;
        using var mask = torch.empty(shape, x.dtype, x.device).bernoulli_(1 - p, generator);
        return x * mask / (1 - p);
    }

    /// <summary>
    /// Standard-normal tensor from the given generator (or the global one). On the CPU a bf16/fp16 tensor is drawn in
    /// fp32 and rounded: torch's CPU normal_ has no vector path for them (measured 0.21 s against 0.05 s for the six
    /// [32, 197, 294] routing-noise draws of a V-JetMoE-T step at batch 32, issue 21).
    /// </summary>
    public static Tensor Normal(long[] shape, ScalarType dtype, Device device, Generator? generator)
    {
        if (device.type != DeviceType.CPU || dtype is not (ScalarType.BFloat16 or ScalarType.Float16))
            return torch.randn(shape, dtype, device, generator: generator);
        using var wide = torch.randn(shape, ScalarType.Float32, device, generator: generator);
        return wide.to(dtype);
    }

    /// <summary>linspace(0, max, n)[i], the per-block rate rule of timm and the reference (spec §2).</summary>
    public static double LinearRate(double max, int n, int i) => n <= 1 ? 0 : max * i / (n - 1);
}
