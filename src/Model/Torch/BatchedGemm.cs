using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Torch;

/// <summary>
/// C[i] += A[i]ᵀ·B[i] for every batch entry i, written straight into an existing fp32 CPU tensor by
/// one call to MKL's <c>cblas_sgemm_batch</c> (beta = 1), the MKL that libtorch_cpu links and exports.
/// Why: the weight gradient of a stacked linear is such a product, and through torch ops it costs a
/// fresh full-size temporary (58 MB for one V-JetMoE-T core fc1, zero-filled by the kernel on first
/// touch) plus a second pass adding it into .grad; here the GEMM accumulates in place (about 3× less
/// time for that gradient on 2 cores, issue 21). Where the symbol is missing (a libtorch without MKL,
/// another OS) or the tensors are not contiguous fp32 CPU tensors, <see cref="Applies"/> is false and
/// callers keep their torch-ops path.
/// </summary>
public static unsafe class BatchedGemm
{
    // CBLAS enums (MKL's mkl_cblas.h); MKL_INT is 32-bit in the LP64 interface these unsuffixed names take.
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;

    private static readonly delegate* unmanaged<int, int*, int*, int*, int*, int*, float*, float**, int*, float**, int*, float*, float**, int*, int, int*, void> sgemmBatch = Resolve();

    /// <summary>True when MKL's batched sgemm was found in the loaded libtorch.</summary>
    public static bool Available => sgemmBatch != null;

    /// <summary>Off only in tests, to run the torch-ops path on a machine that has the kernel (per thread: backward runs on the caller's).</summary>
    internal static bool Enabled { get => !disabled; set => disabled = !value; }

    [ThreadStatic] private static bool disabled;

    /// <summary>
    /// True where <see cref="AccumulateTransposedA"/> applies: a [b, k, m], b [b, k, n] and c [b, m, n],
    /// all contiguous fp32 CPU tensors, sizes within MKL's 32-bit integers.
    /// </summary>
    public static bool Applies(Tensor c, Tensor a, Tensor b) =>
        Enabled && Available
        && RawTensor.Walkable(c, ScalarType.Float32) && RawTensor.Walkable(a, ScalarType.Float32) && RawTensor.Walkable(b, ScalarType.Float32)
        && c.dim() == 3 && a.dim() == 3 && b.dim() == 3
        && a.shape[0] == c.shape[0] && b.shape[0] == c.shape[0] && a.shape[1] == b.shape[1]
        && a.shape[2] == c.shape[1] && b.shape[2] == c.shape[2]
        && c.shape.All(s => s <= int.MaxValue) && a.shape[1] <= int.MaxValue;

    /// <summary>c[i] += a[i]ᵀ · b[i]: a [b, k, m], b [b, k, n], c [b, m, n] (check <see cref="Applies"/> first).</summary>
    public static void AccumulateTransposedA(Tensor c, Tensor a, Tensor b)
    {
        if (!Applies(c, a, b))
            throw new ArgumentException($"batched gemm needs contiguous fp32 CPU tensors a [b, k, m], b [b, k, n], c [b, m, n]; got a [{string.Join(", ", a.shape)}] {a.dtype}, b [{string.Join(", ", b.shape)}] {b.dtype}, c [{string.Join(", ", c.shape)}] {c.dtype}");
        int count = (int)c.shape[0], m = (int)c.shape[1], n = (int)c.shape[2], k = (int)a.shape[1];
        if (count == 0 || m == 0 || n == 0) return;
        if (k == 0) return;                                                   // an empty sum adds nothing
        float* pa = (float*)RawTensor.Address(a), pb = (float*)RawTensor.Address(b), pc = (float*)RawTensor.Address(c);
        var pointers = new IntPtr[3 * count];                                 // a, b, c of every entry
        for (int i = 0; i < count; i++)
        {
            pointers[i] = (IntPtr)(pa + (long)i * k * m);
            pointers[count + i] = (IntPtr)(pb + (long)i * k * n);
            pointers[2 * count + i] = (IntPtr)(pc + (long)i * m * n);
        }
        // Row-major C (m×n) = 1·Aᵀ·B + 1·C with A stored k×m (lda = m) and B stored k×n (ldb = n).
        int transA = Trans, transB = NoTrans, lda = m, ldb = n, ldc = n;
        float alpha = 1, beta = 1;
        fixed (IntPtr* p = pointers)
            sgemmBatch(RowMajor, &transA, &transB, &m, &n, &k, &alpha, (float**)p, &lda, (float**)(p + count), &ldb, &beta, (float**)(p + 2 * count), &ldc, 1, &count);
        GC.KeepAlive(a); GC.KeepAlive(b); GC.KeepAlive(c);
    }

    private static delegate* unmanaged<int, int*, int*, int*, int*, int*, float*, float**, int*, float**, int*, float*, float**, int*, int, int*, void> Resolve()
    {
        // libtorch_cpu is already loaded by TorchSharp; loading it by name returns that copy.
        foreach (var name in new[] { "libtorch_cpu.so", "libtorch_cpu.dylib", "torch_cpu.dll" })
            if (NativeLibrary.TryLoad(name, typeof(torch).Assembly, null, out var lib)
                && NativeLibrary.TryGetExport(lib, "cblas_sgemm_batch", out var f))
                return (delegate* unmanaged<int, int*, int*, int*, int*, int*, float*, float**, int*, float**, int*, float*, float**, int*, int, int*, void>)f;
        return null;
    }
}
