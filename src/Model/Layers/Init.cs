using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Layers;

/// <summary>
/// Parameter initialisers that respect the device: on the "meta" device (used to count the
/// parameters of billion-parameter variants without allocating them) they do nothing.
/// </summary>
public static class Init
{
    static bool Skip(Tensor t) => t.device_type == DeviceType.META;

    public static void TruncNormal(Tensor t, double std = 0.02)
    {
        if (Skip(t)) return;
        using var _ = no_grad();
        nn.init.trunc_normal_(t, 0, std, -2 * std, 2 * std);
    }

    public static void Normal(Tensor t, double std)
    {
        if (Skip(t)) return;
        using var _ = no_grad();
        nn.init.normal_(t, 0, std);
    }

    public static void Constant(Tensor t, double value)
    {
        if (Skip(t)) return;
        using var _ = no_grad();
        t.fill_(value);
    }

    public static void Uniform(Tensor t, double bound)
    {
        if (Skip(t)) return;
        using var _ = no_grad();
        nn.init.uniform_(t, -bound, bound);
    }

    /// <summary>orthogonal_ on t viewed as [rows, cols] (spec §3.1: Φ viewed as (E·S, D)).</summary>
    public static void Orthogonal(Tensor t, long rows, long cols)
    {
        if (Skip(t)) return;
        using var _ = no_grad();
        using var flat = torch.empty(rows, cols, dtype: ScalarType.Float32);
        nn.init.orthogonal_(flat);
        using var shaped = flat.reshape(t.shape).to(t.dtype, t.device);
        t.copy_(shaped);
    }

    /// <summary>A learnable 0-d parameter holding <paramref name="value"/> (temperatures, scales).</summary>
    public static TorchSharp.Modules.Parameter Scalar(Device? device, double value)
    {
        var p = new TorchSharp.Modules.Parameter(torch.empty(Array.Empty<long>(), ScalarType.Float32, device ?? CPU));
        Constant(p, value);
        return p;
    }

    /// <summary>A fresh parameter of the given shape on the device (uninitialised).</summary>
    public static TorchSharp.Modules.Parameter Param(Device? device, params long[] shape) =>
        new(torch.empty(shape, ScalarType.Float32, device ?? CPU));
}
