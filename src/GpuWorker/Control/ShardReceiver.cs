using System.Security.Cryptography;
using Grpc.Core;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.Control;

/// <summary>
/// The receiving side of LoadShard: a stream of tensors, each a header chunk followed by data
/// chunks up to its byte_length. Every header is validated (dtype, shape, size limit, a 32-byte
/// SHA-256) before its tensor is allocated; the bytes are hashed as they arrive and a tensor whose
/// hash differs from its header's is refused. A duplicate name, data without an open tensor, a
/// tensor cut short or a wrong hash is refused with InvalidArgument naming the tensor; nothing of
/// a refused stream is kept.
/// </summary>
public static class ShardReceiver
{
    public static async Task<Dictionary<string, Tensor>> ReadAsync(IAsyncStreamReader<TensorChunk> stream, WireLimits limits, int rank, CancellationToken ct)
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        TensorAssembler? open = null;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] expected = [];
        string name = "", what = "";
        try
        {
            while (await stream.MoveNext(ct))
            {
                var chunk = stream.Current;
                if (chunk.Header is { } h)
                {
                    if (open is not null) Close();
                    name = h.Name;
                    what = $"rank {rank}: LoadShard tensor '{name}'";
                    if (string.IsNullOrEmpty(name)) throw WireErrors.Invalid($"rank {rank}: LoadShard: a tensor without a name");
                    if (tensors.ContainsKey(name)) throw WireErrors.Invalid($"{what}: sent twice");
                    var dtype = TensorCodec.ValidateHeader(h, limits, what);
                    if (h.Sha256.Length != SHA256.HashSizeInBytes)
                        throw WireErrors.Invalid($"{what}: the header carries {h.Sha256.Length} bytes of sha256, expected {SHA256.HashSizeInBytes} (every piece of a shard is verified)");
                    expected = h.Sha256.ToByteArray();
                    open = new TensorAssembler(h, dtype, what);
                }
                else if (open is null)
                    throw WireErrors.Invalid($"rank {rank}: LoadShard: data before any tensor header");
                open.Append(chunk.Data.Span);
                hash.AppendData(chunk.Data.Span);
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
            var t = open!.Complete();                       // refuses a tensor cut short
            open.Dispose();
            open = null;
            var got = hash.GetHashAndReset();
            if (!CryptographicOperations.FixedTimeEquals(got, expected))
            {
                t.Dispose();
                throw WireErrors.Invalid($"{what}: SHA-256 of the received bytes is {Convert.ToHexStringLower(got)}, the header says {Convert.ToHexStringLower(expected)}: corrupted in transit, refused");
            }
            tensors[name] = t.DetachFromDisposeScope();
        }
    }
}
