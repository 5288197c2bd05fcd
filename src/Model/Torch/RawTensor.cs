using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Torch;

/// <summary>
/// Raw access to a tensor's storage for the CPU kernels written in C# (the fused AdamW pass,
/// entmax15's threshold, dropout masks). Every kernel checks <see cref="Walkable"/> first and keeps
/// a torch-ops path for every other device, dtype or layout.
/// </summary>
public static unsafe class RawTensor
{
    /// <summary>True where the tensor's storage can be walked as a raw span: CPU, the given dtype, contiguous.</summary>
    public static bool Walkable(Tensor t, ScalarType dtype) =>
        t.device_type == DeviceType.CPU && t.dtype == dtype && t.is_contiguous();

    /// <summary>The address of a contiguous CPU tensor's first element (no copy; valid while the tensor lives).</summary>
    public static void* Address(Tensor t) => Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));
}
