using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Jetpack.Model.Data;
using Jetpack.Model.Torch;
using Jetpack.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Jetpack.Model.Layers;

/// <summary>
/// Dropout masks made in one multi-threaded pass on the CPU: element i keeps its value, scaled by
/// 1/keep, when SplitMix64's i-th output from a seed is below keep·2⁶⁴ (so P(keep) = keep to 2⁻⁶⁴),
/// and is zero otherwise. The seed is one int64 drawn from the layer's generator, so a mask is a pure
/// function of that generator's state, whatever the thread count. torch's bernoulli_ spends ~11 ns an
/// element on this CPU (V-JetMoE-T's expert dropout drew ~32M a step at batch 32, ~0.35 s); this pass
/// spends well under one, with AVX-512 8 counters at a time. Other devices keep bernoulli_.
/// </summary>
public static unsafe class DropoutMask
{
    /// <summary>Elements per work item.</summary>
    private const long ChunkElements = 1 << 16;

    /// <summary>True where <see cref="Draw"/> applies: a CPU tensor in fp32 or bf16.</summary>
    public static bool Applies(Tensor like) =>
        like.device_type == DeviceType.CPU && (like.dtype == ScalarType.Float32 || like.dtype == ScalarType.BFloat16);

    /// <summary>A mask shaped and typed like <paramref name="like"/>: 1/keep with probability keep, else 0.</summary>
    public static Tensor Draw(Tensor like, double keep, Generator? generator)
    {
        if (keep <= 0 || keep > 1) throw new ArgumentOutOfRangeException(nameof(keep), keep, "keep probability must be in (0, 1]");
        ulong seed;
        using (var draw = randint(0, long.MaxValue, [1], ScalarType.Int64, generator: generator)) seed = (ulong)draw.item<long>();
        var mask = empty(like.shape, like.dtype, like.device);
        Fill(mask, seed, keep);
        return mask;
    }

    /// <summary>Writes the mask for <paramref name="seed"/> into a contiguous fp32 or bf16 CPU tensor.</summary>
    public static void Fill(Tensor mask, ulong seed, double keep)
    {
        bool bf16 = mask.dtype == ScalarType.BFloat16;
        if (!RawTensor.Walkable(mask, bf16 ? ScalarType.BFloat16 : ScalarType.Float32))
            throw new ArgumentException($"a dropout mask is filled in a contiguous fp32/bf16 CPU tensor, got {mask.dtype} on {mask.device}");
        ulong below = keep >= 1 ? ulong.MaxValue : (ulong)(keep * 18446744073709551616.0);
        float scale = (float)(1 / keep);
        long n = mask.numel();
        void* data = RawTensor.Address(mask);
        Parallel.For(0L, (n + ChunkElements - 1) / ChunkElements, item =>
        {
            long at = item * ChunkElements, len = Math.Min(ChunkElements, n - at);
            if (bf16) FillBf16((ushort*)data + at, at, len, seed, below, scale);
            else FillFloat((float*)data + at, at, len, seed, below, scale);
        });
    }

    /// <summary>Eight lanes' step: 8·γ.</summary>
    private static readonly Vector512<ulong> Step = Vector512.Create(unchecked(8 * Gamma));

    private const ulong Gamma = 0x9E3779B97F4A7C15UL;

    /// <summary>The states of draws at … at + 7: seed + (i + 1)·γ lane by lane.</summary>
    private static Vector512<ulong> Counters(ulong seed, long at) =>
        Vector512.Create(seed) + (Vector512.Create((ulong)(at + 1)) + Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7)) * Vector512.Create(Gamma);

    /// <summary>The i-th draw: SplitMix64's output for state seed + (i + 1)·γ.</summary>
    private static ulong Draw(ulong seed, long i) => SplitMix64.Mix(unchecked(seed + (ulong)(i + 1) * Gamma));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FillFloat(float* dst, long at, long len, ulong seed, ulong below, float scale)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated && Avx512DQ.IsSupported)
        {
            var state = Counters(seed, at);
            var limit = Vector512.Create(below);
            var on = Vector512.Create(scale);
            for (; i + 16 <= len; i += 16)
            {
                var lo = Vector512.LessThan(SplitMix64.Mix(state), limit); state += Step;
                var hi = Vector512.LessThan(SplitMix64.Mix(state), limit); state += Step;
                var keepLanes = Vector512.Narrow(lo, hi).AsSingle();
                (on & keepLanes).Store(dst + i);
            }
        }
        for (; i < len; i++) dst[i] = Draw(seed, at + i) < below ? scale : 0f;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FillBf16(ushort* dst, long at, long len, ulong seed, ulong below, float scale)
    {
        ushort on = AdamWKernel.ToBf16(scale);
        long i = 0;
        if (Vector512.IsHardwareAccelerated && Avx512DQ.IsSupported && Avx512BW.IsSupported)
        {
            var state = Counters(seed, at);
            var limit = Vector512.Create(below);
            var onLanes = Vector512.Create(on);
            for (; i + 32 <= len; i += 32)
            {
                var a = Vector512.LessThan(SplitMix64.Mix(state), limit); state += Step;
                var b = Vector512.LessThan(SplitMix64.Mix(state), limit); state += Step;
                var c = Vector512.LessThan(SplitMix64.Mix(state), limit); state += Step;
                var d = Vector512.LessThan(SplitMix64.Mix(state), limit); state += Step;
                var keepLanes = Vector512.Narrow(Vector512.Narrow(a, b), Vector512.Narrow(c, d));
                (onLanes & keepLanes).Store(dst + i);
            }
        }
        for (; i < len; i++) dst[i] = Draw(seed, at + i) < below ? on : (ushort)0;
    }
}
