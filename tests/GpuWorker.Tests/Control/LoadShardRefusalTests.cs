using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Jetpack.GpuWorker.DataPlane;
using Jetpack.GpuWorker.Tests.DataPlane;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Wire;
using Jetpack.Protocol.Channels;

namespace Jetpack.GpuWorker.Tests.Control;

/// <summary>LoadShard streams that do not describe whole, named, distinct tensors are refused.</summary>
public class LoadShardRefusalTests
{
    static async Task<RpcException> Send(LoopbackCluster c, params TensorChunk[] chunks)
    {
        var channel = WireChannels.Open(c.Nodes[0].Address, WireLimits.Default);
        var client = new WorkerControl.WorkerControlClient(channel.Intercept(new ClusterTokenCallInterceptor(c.Token)));
        using var call = client.LoadShard(deadline: DateTime.UtcNow.AddSeconds(20));
        try
        {
            foreach (var ch in chunks) await call.RequestStream.WriteAsync(ch);
            await call.RequestStream.CompleteAsync();
        }
        catch (Exception) { /* answered early */ }
        return await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseAsync);
    }

    /// <summary>A header whose sha256 is that of <paramref name="bytes"/> zero bytes (what the tests send), unless given.</summary>
    static TensorHeader H(string name, long bytes, long[] shape, byte[]? sha = null)
    {
        var h = new TensorHeader { Name = name, Dtype = DType.Float32, ByteLength = bytes, Sha256 = ByteString.CopyFrom(sha ?? SHA256.HashData(new byte[bytes])) };
        h.Shape.Add(shape);
        return h;
    }

    [Fact]
    public async Task DuplicateNamesDataWithoutHeaderAndShortTensorsAreRefused()
    {
        await using var c = await LoopbackCluster.StartAsync(1);
        var data8 = ByteString.CopyFrom(new byte[8]);
        var dup = await Send(c, new TensorChunk { Header = H("w", 8, [2]), Data = data8 }, new TensorChunk { Header = H("w", 8, [2]), Data = data8 });
        Assert.Equal(StatusCode.InvalidArgument, dup.StatusCode);
        Assert.Contains("'w': sent twice", dup.Status.Detail);
        var headless = await Send(c, new TensorChunk { Data = data8 });
        Assert.Contains("data before any tensor header", headless.Status.Detail);
        var shortT = await Send(c, new TensorChunk { Header = H("w", 16, [4]), Data = data8 });
        Assert.Contains("ended after 8 of 16 bytes", shortT.Status.Detail);
        var shape = await Send(c, new TensorChunk { Header = H("w", 12, [4]), Data = data8 });
        Assert.Contains("byte_length 12, expected 16", shape.Status.Detail);
        Assert.Null(c.Nodes[0].LoadedShard);
    }

    [Fact]
    public async Task APieceWhoseBytesDoNotHashAsItsHeaderSaysOrWithoutAHashIsRefusedByName()
    {
        await using var c = await LoopbackCluster.StartAsync(1);
        var data8 = ByteString.CopyFrom(new byte[8]);
        var flipped = new byte[8];
        flipped[3] = 1;                                                            // one bit changed in transit
        var good = new TensorChunk { Header = H("blocks.0.attn.qkv.weight", 8, [2]), Data = data8 };
        var corrupt = await Send(c, good, new TensorChunk { Header = H("blocks.3.mlp.core_experts.fc1_weight", 8, [2]), Data = ByteString.CopyFrom(flipped) });
        Assert.Equal(StatusCode.InvalidArgument, corrupt.StatusCode);
        Assert.Contains("'blocks.3.mlp.core_experts.fc1_weight': SHA-256 of the received bytes is", corrupt.Status.Detail);
        Assert.Contains(Convert.ToHexStringLower(SHA256.HashData(new byte[8])), corrupt.Status.Detail);
        var unhashed = await Send(c, new TensorChunk { Header = H("head.weight", 8, [2], sha: []), Data = data8 });
        Assert.Contains("'head.weight': the header carries 0 bytes of sha256, expected 32", unhashed.Status.Detail);
        Assert.Null(c.Nodes[0].LoadedShard);                                       // nothing of a refused stream is kept
    }
}
