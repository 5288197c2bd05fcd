using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.Launch;

/// <summary>
/// The sending side of LoadShard (the coordinator's scatter): named tensors, each as a header chunk
/// and data chunks copied through one reused buffer.
/// </summary>
public static class ShardSender
{
    public static async Task<LoadShardReply> SendAsync(WorkerControl.WorkerControlClient client, IEnumerable<KeyValuePair<string, Tensor>> tensors,
                                                       WireLimits limits, CancellationToken ct = default)
    {
        var buffer = new byte[limits.ChunkBytes];
        using var call = client.LoadShard(cancellationToken: ct);
        foreach (var (name, t) in tensors)
        {
            using var readable = TensorCodec.Readable(t);
            var header = TensorCodec.Header(name, readable);
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
