using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Training;

/// <summary>
/// One contiguous run of a parameter the fused pass updates: fp32 master p, moments m and v, its
/// gradient as fp32 (<see cref="Grad"/>) or as bf16 (<see cref="GradBf16"/>, widened in the pass),
/// and optionally a bf16 shadow copy written from the new p in the same pass. Pointers into
/// contiguous CPU storage; valid while the step's tensors live.
/// </summary>
public unsafe readonly struct AdamWSpan(float* p, float* grad, ushort* gradBf16, float* m, float* v, ushort* shadow, long count, float decay, float stepSize)
{
    public readonly float* P = p;
    public readonly float* Grad = grad;
    public readonly ushort* GradBf16 = gradBf16;
    public readonly float* M = m;
    public readonly float* V = v;
    public readonly ushort* Shadow = shadow;
    public readonly long Count = count;
    /// <summary>1 − lr·wd of the span's group (decoupled weight decay as a per-range scalar).</summary>
    public readonly float Decay = decay;
    /// <summary>lr / (1 − β₁ᵗ) of the span's group (its layer-decayed lr).</summary>
    public readonly float StepSize = stepSize;
}

/// <summary>
/// The CPU kernels of the fused optimizer pass (issue 21): AdamW, gradient sum of squares and gradient
/// zeroing, each one multi-threaded pass over raw spans of contiguous fp32/bf16 storage, 16 lanes at a
/// time with AVX-512 (Vector512; 8 with AVX2, Vector256; a scalar loop elsewhere), split into chunks that <see cref="Parallel.For(int, int, Action{int})"/>
/// spreads over the cores. The kernel walks per-tensor spans instead of one flat buffer: parameters stay
/// separate tensors (checkpoints, expert shards and load_state_dict replace them), and spans of ≥ 64 K
/// elements cost the same bandwidth as one flat range.
///
/// Per element, in fp32 like the torch-ops path (<see cref="AdamW"/> with fused off):
/// g ← s·g; m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p·decay − stepSize · m / (√v / √(1−β₂ᵗ) + ε);
/// shadow ← bf16(p) rounded to nearest even, as torch's fp32→bf16 copy_. Traffic: read p, g, m, v and
/// write p, m, v (28 bytes per parameter; bf16 grads read 2 instead of 4, the shadow adds 2 written).
/// </summary>
public static unsafe class AdamWKernel
{
    /// <summary>Elements per work item: 64 K floats = 256 KB per stream, large enough that the per-item cost vanishes.</summary>
    public const long ChunkElements = 1 << 16;

    /// <summary>The AdamW update over all spans, gradients scaled by <paramref name="gradScale"/> (the clipping coefficient) on the fly.</summary>
    public static void Step(IReadOnlyList<AdamWSpan> spans, float beta1, float beta2, float eps, float sqrtBc2, float gradScale)
    {
        var work = Chunks(spans);
        var a = spans is AdamWSpan[] arr ? arr : spans.ToArray();
        Parallel.For(0, work.Length, i =>
        {
            var (span, at, len) = work[i];
            Update(in a[span], at, len, beta1, beta2, eps, sqrtBc2, gradScale);
        });
    }

    /// <summary>Σ g² over fp32 (<paramref name="fp32"/>) and bf16 (<paramref name="bf16"/>) gradient spans, accumulated in fp64.</summary>
    public static double SumOfSquares(IReadOnlyList<(IntPtr Data, long Count)> fp32, IReadOnlyList<(IntPtr Data, long Count)> bf16)
    {
        var work = new List<(IntPtr Data, long At, long Len, bool Bf16)>();
        foreach (var (d, n) in fp32) for (long at = 0; at < n; at += ChunkElements) work.Add((d, at, Math.Min(ChunkElements, n - at), false));
        foreach (var (d, n) in bf16) for (long at = 0; at < n; at += ChunkElements) work.Add((d, at, Math.Min(ChunkElements, n - at), true));
        var partial = new double[work.Count];
        Parallel.For(0, work.Count, i =>
        {
            var (d, at, len, isBf16) = work[i];
            partial[i] = isBf16 ? SquaresBf16((ushort*)d + at, len) : Squares((float*)d + at, len);
        });
        double total = 0;
        foreach (var x in partial) total += x;   // fixed order: the result does not depend on scheduling
        return total;
    }

    /// <summary>Sets every byte of the spans to zero, in parallel (the flat memset of gradients).</summary>
    public static void Zero(IReadOnlyList<(IntPtr Data, long Bytes)> spans)
    {
        const long chunk = ChunkElements * 4;
        var work = new List<(IntPtr Data, long At, long Len)>();
        foreach (var (d, n) in spans) for (long at = 0; at < n; at += chunk) work.Add((d, at, Math.Min(chunk, n - at)));
        Parallel.For(0, work.Count, i => new Span<byte>((byte*)work[i].Data + work[i].At, (int)work[i].Len).Clear());
    }

    static (int Span, long At, long Len)[] Chunks(IReadOnlyList<AdamWSpan> spans)
    {
        var work = new List<(int, long, long)>();
        for (int s = 0; s < spans.Count; s++)
            for (long at = 0; at < spans[s].Count; at += ChunkElements)
                work.Add((s, at, Math.Min(ChunkElements, spans[s].Count - at)));
        return [.. work];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Update(in AdamWSpan s, long at, long len, float beta1, float beta2, float eps, float sqrtBc2, float gradScale)
    {
        float* p = s.P + at, m = s.M + at, v = s.V + at;
        float* g = s.Grad is null ? null : s.Grad + at;
        ushort* gb = s.GradBf16 is null ? null : s.GradBf16 + at;
        ushort* sh = s.Shadow is null ? null : s.Shadow + at;
        float omb1 = 1 - beta1, omb2 = 1 - beta2, decay = s.Decay, step = s.StepSize;
        long i = 0;
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            var vb1 = Vector512.Create(beta1); var vomb1 = Vector512.Create(omb1);
            var vb2 = Vector512.Create(beta2); var vomb2 = Vector512.Create(omb2);
            var veps = Vector512.Create(eps); var vbc2 = Vector512.Create(sqrtBc2);
            var vdecay = Vector512.Create(decay); var vstep = Vector512.Create(step); var vscale = Vector512.Create(gradScale);
            for (; i + 16 <= len; i += 16)
            {
                var gv = (g is not null ? Vector512.Load(g + i) : WidenBf16(gb + i)) * vscale;
                var mv = Vector512.Load(m + i) * vb1 + gv * vomb1;
                var vv = Vector512.Load(v + i) * vb2 + gv * gv * vomb2;
                var denom = Vector512.Sqrt(vv) / vbc2 + veps;
                var pv = Vector512.Load(p + i) * vdecay - vstep * (mv / denom);
                mv.Store(m + i); vv.Store(v + i); pv.Store(p + i);
                if (sh is not null) NarrowBf16(pv).Store(sh + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated && Avx2.IsSupported)
        {
            var vb1 = Vector256.Create(beta1); var vomb1 = Vector256.Create(omb1);
            var vb2 = Vector256.Create(beta2); var vomb2 = Vector256.Create(omb2);
            var veps = Vector256.Create(eps); var vbc2 = Vector256.Create(sqrtBc2);
            var vdecay = Vector256.Create(decay); var vstep = Vector256.Create(step); var vscale = Vector256.Create(gradScale);
            for (; i + 8 <= len; i += 8)
            {
                var gv = (g is not null ? Vector256.Load(g + i) : WidenBf16x8(gb + i)) * vscale;
                var mv = Vector256.Load(m + i) * vb1 + gv * vomb1;
                var vv = Vector256.Load(v + i) * vb2 + gv * gv * vomb2;
                var denom = Vector256.Sqrt(vv) / vbc2 + veps;
                var pv = Vector256.Load(p + i) * vdecay - vstep * (mv / denom);
                mv.Store(m + i); vv.Store(v + i); pv.Store(p + i);
                if (sh is not null) NarrowBf16x8(pv).Store(sh + i);
            }
        }
        for (; i < len; i++)
        {
            float gi = (g is not null ? g[i] : BitConverter.Int32BitsToSingle(gb[i] << 16)) * gradScale;
            float mi = m[i] * beta1 + gi * omb1;
            float vi = v[i] * beta2 + gi * gi * omb2;
            float pi = p[i] * decay - step * (mi / (MathF.Sqrt(vi) / sqrtBc2 + eps));
            m[i] = mi; v[i] = vi; p[i] = pi;
            if (sh is not null) sh[i] = ToBf16(pi);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static double Squares(float* g, long len)
    {
        long i = 0;
        var acc = Vector512<double>.Zero;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= len; i += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(g + i));
                acc += lo * lo + hi * hi;
            }
        var acc256 = Vector256<double>.Zero;
        if (!Vector512.IsHardwareAccelerated && Vector256.IsHardwareAccelerated)
            for (; i + 8 <= len; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(g + i));
                acc256 += lo * lo + hi * hi;
            }
        double total = Vector512.Sum(acc) + Vector256.Sum(acc256);
        for (; i < len; i++) total += (double)g[i] * g[i];
        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static double SquaresBf16(ushort* g, long len)
    {
        long i = 0;
        var acc = Vector512<double>.Zero;
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
            for (; i + 16 <= len; i += 16)
            {
                var (lo, hi) = Vector512.Widen(WidenBf16(g + i));
                acc += lo * lo + hi * hi;
            }
        double total = Vector512.Sum(acc);
        for (; i < len; i++) { double x = BitConverter.Int32BitsToSingle(g[i] << 16); total += x * x; }
        return total;
    }

    /// <summary>16 bf16 values → fp32, exactly (the bf16 bits are the fp32's upper half).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> WidenBf16(ushort* src) =>
        Vector512.ShiftLeft(Avx512F.ConvertToVector512UInt32(Vector256.Load(src)), 16).AsSingle();

    /// <summary>16 fp32 → bf16, round to nearest even; NaN stays a quiet NaN (c10::BFloat16's rule).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<ushort> NarrowBf16(Vector512<float> x)
    {
        var bits = x.AsUInt32();
        var rounded = bits + Vector512.Create(0x7FFFu) + (Vector512.ShiftRightLogical(bits, 16) & Vector512.Create(1u));
        var nan = ~Vector512.Equals(x, x).AsUInt32();
        var r = Vector512.ConditionalSelect(nan, Vector512.Create(0x7FC00000u), rounded);
        return Avx512F.ConvertToVector256UInt16(Vector512.ShiftRightLogical(r, 16));
    }

    /// <summary>8 bf16 values → fp32 (AVX2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> WidenBf16x8(ushort* src) =>
        Vector256.ShiftLeft(Avx2.ConvertToVector256Int32(Vector128.Load(src)), 16).AsSingle();

    /// <summary>8 fp32 → bf16 (AVX2), rounded like <see cref="NarrowBf16"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<ushort> NarrowBf16x8(Vector256<float> x)
    {
        var bits = x.AsUInt32();
        var rounded = bits + Vector256.Create(0x7FFFu) + (Vector256.ShiftRightLogical(bits, 16) & Vector256.Create(1u));
        var nan = ~Vector256.Equals(x, x).AsUInt32();
        var r = Vector256.ShiftRightLogical(Vector256.ConditionalSelect(nan, Vector256.Create(0x7FC00000u), rounded), 16);
        return Vector256.Narrow(r, Vector256<uint>.Zero).GetLower();
    }

    /// <summary>fp32 → bf16, round to nearest even; NaN stays a quiet NaN.</summary>
    internal static ushort ToBf16(float f)
    {
        if (float.IsNaN(f)) return 0x7FC0;
        uint bits = BitConverter.SingleToUInt32Bits(f);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1)) >> 16);
    }
}
