using Grpc.Core;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.Control;

/// <summary>
/// The receiving side of LoadShard: a stream of tensors, each a header chunk followed by data
/// chunks up to its byte_length. Every header is validated (dtype, shape, size limit) before its
/// tensor is allocated; a duplicate name, data without an open tensor, or a tensor cut short is
/// refused with InvalidArgument naming the tensor.
/// </summary>
public static class ShardReceiver
{
    public static async Task<Dictionary<string, Tensor>> ReadAsync(IAsyncStreamReader<TensorChunk> stream, WireLimits limits, int rank, CancellationToken ct)
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        TensorAssembler? open = null;
        string name = "";
        try
        {
            while (await stream.MoveNext(ct))
            {
                var chunk = stream.Current;
                if (chunk.Header is { } h)
                {
                    if (open is not null) Close();
                    name = h.Name;
                    string what = $"rank {rank}: LoadShard tensor '{name}'";
                    if (string.IsNullOrEmpty(name)) throw WireErrors.Invalid($"rank {rank}: LoadShard: a tensor without a name");
                    if (tensors.ContainsKey(name)) throw WireErrors.Invalid($"{what}: sent twice");
                    var dtype = TensorCodec.ValidateHeader(h, limits, what);
                    open = new TensorAssembler(h, dtype, what);
                }
                else if (open is null)
                    throw WireErrors.Invalid($"rank {rank}: LoadShard: data before any tensor header");
                open.Append(chunk.Data.Span);
            }
            if (open is not null) Close();
            return tensors;
        }
        catch
        {
            open?.Dispose();
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }

        void Close()
        {
            tensors[name] = open!.Complete().DetachFromDisposeScope();
            open.Dispose();
            open = null;
        }
    }
}
