using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Jetpack.Model.Data;

/// <summary>
/// Reused storage for batch tensors (issue 18: batches are assembled into reused buffers). A batch is a
/// float32 CPU tensor whose storage is a pooled native buffer, written in place by the decode threads, one
/// sample's slice each (<see cref="BatchBuffer.Sample"/>): no tensor per sample, no stacking copy, and no page
/// faults of a fresh 19 MB allocation per 32 images at 224² (a fresh tensor is written at ~2 GB/s here, a
/// reused one at ~10 GB/s).
/// <para>
/// A buffer comes back to the pool only when torch frees the storage, that is when the last tensor sharing it
/// is gone: the batch itself, and also a view of it, a <c>to(CPU)</c> alias, or a tensor autograd saved for
/// the backward pass. So a consumer disposes a batch as before, whatever still uses its memory: the buffer is
/// not reused under it. The tensor is made with LibTorchSharp's <c>THSTensor_new</c> (torch::from_blob with a
/// deleter), which TorchSharp 0.107 also uses for <c>from_array</c> but does not expose with a deleter of one's
/// own (its <c>tensor(Memory&lt;float&gt;)</c> copies). A batch left to the garbage collector returns when its
/// finalizer runs. At most <see cref="MaxIdlePerSize"/> idle buffers of each size and <see cref="MaxIdleBytes"/> in all
/// are kept; more are freed.
/// </para>
/// </summary>
public static unsafe class BatchBuffers
{
    /// <summary>Idle buffers kept per size: prefetch depth plus the batch in use plus one being built.</summary>
    public const int MaxIdlePerSize = 4;

    /// <summary>Idle bytes kept over all sizes (a run's end, or a test host making many shapes, must not hold memory for good).</summary>
    public const long MaxIdleBytes = 512L << 20;

    private const sbyte Float32 = (sbyte)torch.ScalarType.Float32;
    private static readonly ConcurrentDictionary<long, ConcurrentBag<NativeBuffer>> Idle = new();
    private static readonly ConcurrentDictionary<nint, NativeBuffer> Lent = new();
    private static long _allocated;
    private static long _idleBytes;

    /// <summary>Buffers made so far (not reused ones): a count that stops growing over a run shows the reuse.</summary>
    public static long Allocated => Interlocked.Read(ref _allocated);

    /// <summary>A float32 CPU batch tensor of <paramref name="shape"/> (dimension 0: samples), uninitialised: every value must be written.</summary>
    public static BatchBuffer Rent(ReadOnlySpan<long> shape)
    {
        long length = 1;
        foreach (var d in shape)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(d, 1, nameof(shape));
            length *= d;
        }
        if (shape.Length < 1 || length > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(shape), $"a batch of [{string.Join(", ", shape.ToArray())}] is not 1 to {Array.MaxLength} floats");
        NativeBuffer buffer;
        if (Idle.TryGetValue(length, out var bag) && bag.TryTake(out var idle))
        {
            Interlocked.Add(ref _idleBytes, -idle.Length * sizeof(float));
            buffer = idle;
        }
        else buffer = Allocate(length);
        Lent[(nint)buffer.Pointer] = buffer;
        IntPtr handle;
        fixed (long* sizes = shape)
            handle = THSTensor_new((IntPtr)buffer.Pointer, &Freed, sizes, shape.Length, Float32, Float32, 0, -1, false);
        if (handle == IntPtr.Zero)
        {
            Lent.TryRemove((nint)buffer.Pointer, out _);
            Return(buffer);
            throw new InvalidOperationException($"torch could not make a [{string.Join(", ", shape.ToArray())}] tensor over a batch buffer");
        }
        return new BatchBuffer(torch.Tensor.UnsafeCreateTensor(handle), buffer.Pointer, (int)length, shape[0]);
    }

    private static NativeBuffer Allocate(long length)
    {
        Interlocked.Increment(ref _allocated);
        return new NativeBuffer(length);
    }

    private static void Return(NativeBuffer buffer)
    {
        var bag = Idle.GetOrAdd(buffer.Length, _ => []);
        long bytes = buffer.Length * sizeof(float);
        bool keep = bag.Count < MaxIdlePerSize;
        if (keep && Interlocked.Add(ref _idleBytes, bytes) > MaxIdleBytes)
        {
            Interlocked.Add(ref _idleBytes, -bytes);                                  // over the byte budget
            keep = false;
        }
        if (keep) bag.Add(buffer);
        else buffer.Free();
    }

    // torch's deleter: the storage is freed (on whatever thread dropped its last reference). Must not throw.
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void Freed(IntPtr data)
    {
        try
        {
            if (Lent.TryRemove(data, out var buffer)) Return(buffer);
        }
        catch
        {
            // an exception must not cross into native code; the buffer is then simply not reused
        }
    }

    // LibTorchSharp: torch::from_blob(data, sizes, deleter) as a tensor of dtype on the device (CPU: type 0, index −1).
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_new(IntPtr data, delegate* unmanaged[Cdecl]<IntPtr, void> deleter, long* sizes, int sizeCount,
        sbyte type, sbyte dtype, int deviceType, int deviceIndex, [MarshalAs(UnmanagedType.U1)] bool requiresGrad);

    /// <summary>Native, 64-byte aligned memory, never moved by the GC.</summary>
    private sealed class NativeBuffer(long length)
    {
        public float* Pointer { get; private set; } = (float*)NativeMemory.AlignedAlloc((nuint)length * sizeof(float), 64);
        public long Length { get; } = length;

        public void Free()
        {
            if (Pointer is null) return;
            NativeMemory.AlignedFree(Pointer);
            Pointer = null;
        }
    }
}

/// <summary>
/// A rented batch: the tensor (the caller owns it and disposes it as any tensor) and its samples' slices to
/// write before handing it on. Writing after the tensor is disposed is a bug.
/// </summary>
public sealed unsafe class BatchBuffer
{
    private readonly float* _values;
    private readonly int _sampleLength;
    private readonly long _samples;

    internal BatchBuffer(torch.Tensor tensor, float* values, int length, long samples)
    {
        Tensor = tensor;
        _values = values;
        _samples = samples;
        _sampleLength = (int)(length / samples);
    }

    public torch.Tensor Tensor { get; }

    /// <summary>The buffer's address: which pooled buffer this is (tests).</summary>
    internal nint Address => (nint)_values;

    /// <summary>Sample <paramref name="index"/>'s values, [c, h, w] row-major.</summary>
    public Span<float> Sample(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _samples);
        return new Span<float>(_values + (long)index * _sampleLength, _sampleLength);
    }
}
