using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Jetpack.Model.Distributed;

/// <summary>
/// Sums the gradients of the replicated parameters over ranks (DESIGN.md step 4) in a few large
/// flat buffers instead of one message per parameter. The buffers are allocated once and reused
/// (fresh buffers per step cost page faults, ENVIRONMENT.md "Bytes"). Every rank builds the same
/// buckets from the same parameter order, so the lists passed to the reducer agree. Costs: one copy
/// of every replicated gradient into the buckets and one back per step.
/// </summary>
public sealed class GradientBuckets : IDisposable
{
    private readonly List<(Tensor Buffer, List<(Parameter P, long Offset)> Members)> buckets = [];

    public GradientBuckets(IReadOnlyList<Parameter> replicated, long bucketElements)
    {
        if (bucketElements < 1) throw new ArgumentOutOfRangeException(nameof(bucketElements), $"bucket size must be ≥ 1, got {bucketElements}");
        var current = new List<(Parameter, long)>();
        long size = 0;
        ScalarType? dtype = null;
        void Close()
        {
            if (current.Count == 0) return;
            buckets.Add((torch.zeros(size, dtype!.Value).DetachFromDisposeScope(), current));
            current = []; size = 0;
        }
        foreach (var p in replicated)
        {
            if (size > 0 && (size + p.numel() > bucketElements || p.dtype != dtype)) Close();
            dtype = p.dtype;
            current.Add((p, size));
            size += p.numel();
        }
        Close();
    }

    public int Count => buckets.Count;

    /// <summary>
    /// Copies the gradients into the buckets, all-reduces the buckets and <paramref name="extra"/>
    /// (small tensors riding in the same call), and copies the sums back. A parameter without a
    /// gradient contributes zeros (and gets none back: TorchSharp cannot assign .grad).
    /// </summary>
    public void AllReduce(IGradientReducer reducer, long step, params Tensor[] extra)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (buffer, members) in buckets)
            foreach (var (p, offset) in members)
            {
                var slot = buffer.narrow(0, offset, p.numel());
                if (p.grad is { } g) slot.copy_(g.reshape(-1));
                else slot.zero_();
            }
        reducer.AllReduceSum(step, buckets.Select(b => b.Buffer).Concat(extra).ToList());
        foreach (var (buffer, members) in buckets)
            foreach (var (p, offset) in members)
                p.grad?.copy_(buffer.narrow(0, offset, p.numel()).view_as(p.grad));
    }

    public void Dispose()
    {
        foreach (var (b, _) in buckets) b.Dispose();
        buckets.Clear();
    }
}
