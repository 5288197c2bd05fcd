using Grpc.Core;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.WorkerCluster;

/// <summary>
/// The sending side of LoadShard (the coordinator's scatter): named tensors, each as a header chunk
/// (with the SHA-256 of its bytes: one extra pass over each tensor before it is sent) and data
/// chunks copied through one reused buffer. The tensors may be produced lazily (read from a
/// checkpoint one at a time): each is sent before the next is asked for.
/// </summary>
public static class ShardSender
{
    public static async Task<LoadShardReply> SendAsync(WorkerControl.WorkerControlClient client, IEnumerable<KeyValuePair<string, Tensor>> tensors,
                                                       WireLimits limits, CancellationToken ct = default, CallOptions? options = null)
    {
        var buffer = new byte[limits.ChunkBytes];
        using var call = client.LoadShard(options ?? new CallOptions(cancellationToken: ct));
        foreach (var (name, t) in tensors)
        {
            using var readable = TensorCodec.Readable(t);
            var header = TensorCodec.Header(name, readable);
            header.Sha256 = TensorCodec.Sha256(readable, buffer);
            bool first = true;
            foreach (var data in TensorCodec.Chunks(readable, buffer))
            {
                await call.RequestStream.WriteAsync(new TensorChunk { Header = first ? header : null, Data = data }, ct);
                first = false;
            }
            if (first) await call.RequestStream.WriteAsync(new TensorChunk { Header = header }, ct);
        }
        await call.RequestStream.CompleteAsync();
        return await call.ResponseAsync;
    }
}
