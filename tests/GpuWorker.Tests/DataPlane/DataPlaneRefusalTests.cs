using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Jetpack.GpuWorker.DataPlane;
using Jetpack.Model.Distributed;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;
using ExchangePhase = Jetpack.Model.Distributed.ExchangePhase;
using Jetpack.Protocol.Channels;

namespace Jetpack.GpuWorker.Tests.DataPlane;

/// <summary>Hand-made messages against a real worker server: each bad one is refused with the right status and says why.</summary>
public class DataPlaneRefusalTests
{
    static readonly ExchangeTag Tag = new(2, 0, 1, ExchangePhase.Dispatch);

    static Protocol.Wire.DataPlane.DataPlaneClient Client(LoopbackCluster c, int rank, ClusterToken? token, WireLimits? clientLimits = null)
    {
        var channel = WireChannels.Open(c.Nodes[rank].Address, clientLimits ?? WireLimits.Default);
        return new(token is null ? channel.CreateCallInvoker() : channel.Intercept(new ClusterTokenCallInterceptor(token)));
    }

    static DataHeader Header(string job, int source, ScalarType dtype, long[] shape, bool tagged = true)
    {
        var h = tagged ? MailKey.Exchange(job, Tag, source).ToHeader() : new DataHeader { JobId = job, SourceRank = source };
        h.Tensor = new TensorHeader { Name = "slots", Dtype = WireDTypes.ToWire(dtype), ByteLength = shape.Aggregate(1L, (a, b) => a * b) * (dtype == ScalarType.Float32 ? 4 : 2) };
        h.Tensor.Shape.Add(shape);
        return h;
    }

    static async Task<RpcException> Push(Protocol.Wire.DataPlane.DataPlaneClient client, DataHeader? header, int bytes)
    {
        using var call = client.Push(deadline: DateTime.UtcNow.AddSeconds(20));
        try
        {
            await call.RequestStream.WriteAsync(new DataFrame { Header = header, Data = ByteString.CopyFrom(new byte[bytes]) });
            await call.RequestStream.CompleteAsync();
        }
        catch (Exception) { /* the server may have answered already */ }
        return await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseAsync);
    }

    [Fact]
    public async Task WrongShapeIsRefusedAndTheReceiverFailsNamingSourceAndPhase()
    {
        await using var c = await LoopbackCluster.StartAsync(2);
        var receiving = c.Nodes[1].Mailbox.Expect(MailKey.Exchange(LoopbackCluster.Job, Tag, 0), new Expectation(ScalarType.Float32, [2, 3]));
        var e = await Push(Client(c, 1, c.Token), Header(LoopbackCluster.Job, 0, ScalarType.Float32, [2, 4]), 32);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("shape [2, 4], expected [2, 3]", e.Status.Detail);
        var failed = await Assert.ThrowsAsync<ExchangeFailedException>(() => receiving);
        Assert.Contains("rank 1", failed.Message);
        Assert.Contains("from rank 0", failed.Message);
        Assert.Contains("Dispatch", failed.Message);
    }

    [Fact]
    public async Task WrongDtypeIsRefused()
    {
        await using var c = await LoopbackCluster.StartAsync(2);
        _ = c.Nodes[1].Mailbox.Expect(MailKey.Exchange(LoopbackCluster.Job, Tag, 0), new Expectation(ScalarType.Float32, [2, 3]));
        var e = await Push(Client(c, 1, c.Token), Header(LoopbackCluster.Job, 0, ScalarType.BFloat16, [2, 3]), 12);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("dtype Bfloat16, expected Float32", e.Status.Detail);
    }

    [Fact]
    public async Task OversizeTensorsAndOversizeFramesAreRefused()
    {
        await using var c = await LoopbackCluster.StartAsync(2, limits: new WireLimits { MaxTensorBytes = 1 << 20, ChunkBytes = 64 << 10 });
        // a header announcing more than the limit: refused before anything is expected or allocated
        var e = await Push(Client(c, 1, c.Token), Header(LoopbackCluster.Job, 0, ScalarType.Float32, [1 << 19]), 0);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("exceeds the limit", e.Status.Detail);
        // a single frame above the server's message limit (chunk + header room) is refused by gRPC itself
        // (the client is allowed bigger frames here, so that it is the server that refuses)
        var big = await Push(Client(c, 1, c.Token, new WireLimits { ChunkBytes = 1 << 20 }), Header(LoopbackCluster.Job, 0, ScalarType.Float32, [64 << 10]), 256 << 10);
        Assert.Equal(StatusCode.ResourceExhausted, big.StatusCode);
    }

    [Fact]
    public async Task UntaggedAndHeaderlessMessagesAreRefused()
    {
        await using var c = await LoopbackCluster.StartAsync(2);
        var untagged = await Push(Client(c, 1, c.Token), Header(LoopbackCluster.Job, 0, ScalarType.Float32, [2], tagged: false), 8);
        Assert.Equal(StatusCode.InvalidArgument, untagged.StatusCode);
        Assert.Contains("no tag", untagged.Status.Detail);
        var headerless = await Push(Client(c, 1, c.Token), null, 8);
        Assert.Equal(StatusCode.InvalidArgument, headerless.StatusCode);
        Assert.Contains("no header", headerless.Status.Detail);
        var noTensor = Header(LoopbackCluster.Job, 0, ScalarType.Float32, [2]);
        noTensor.Tensor = null;
        var e = await Push(Client(c, 1, c.Token), noTensor, 8);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("no tensor header", e.Status.Detail);
    }

    [Theory]
    [InlineData("other-job", 0, "job 'other-job'")]
    [InlineData(LoopbackCluster.Job, 2, "from rank 2")]
    [InlineData(LoopbackCluster.Job, -1, "from rank -1")]
    [InlineData(LoopbackCluster.Job, 1, "from rank 1")]      // its own rank
    public async Task MessagesFromOutsideTheCurrentJobAreRefused(string job, int source, string says)
    {
        await using var c = await LoopbackCluster.StartAsync(2);
        var e = await Push(Client(c, 1, c.Token), Header(job, source, ScalarType.Float32, [2]), 8);
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        Assert.Contains(says, e.Status.Detail);
    }

    [Fact]
    public async Task CallsWithoutOrWithAWrongTokenAreRejected()
    {
        await using var c = await LoopbackCluster.StartAsync(2);
        var none = await Push(Client(c, 1, null), Header(LoopbackCluster.Job, 0, ScalarType.Float32, [2]), 8);
        Assert.Equal(StatusCode.Unauthenticated, none.StatusCode);
        var wrong = await Push(Client(c, 1, ClusterToken.Generate()), Header(LoopbackCluster.Job, 0, ScalarType.Float32, [2]), 8);
        Assert.Equal(StatusCode.Unauthenticated, wrong.StatusCode);
        // the control service too
        var channel = WireChannels.Open(c.Nodes[1].Address, WireLimits.Default);
        var control = new WorkerControl.WorkerControlClient(channel);
        var h = await Assert.ThrowsAsync<RpcException>(async () => await control.HealthAsync(new HealthRequest()));
        Assert.Equal(StatusCode.Unauthenticated, h.StatusCode);
        var ok = await new WorkerControl.WorkerControlClient(channel.Intercept(new ClusterTokenCallInterceptor(c.Token))).HealthAsync(new HealthRequest());
        Assert.Equal(1, ok.Rank);
    }

    [Fact]
    public async Task ADuplicateOfADeliveredKeyIsRefused()
    {
        await using var c = await LoopbackCluster.StartAsync(2);
        var key = MailKey.Exchange(LoopbackCluster.Job, Tag, 0);
        var receiving = c.Nodes[1].Mailbox.Expect(key, new Expectation(ScalarType.Float32, [2]));
        var client = Client(c, 1, c.Token);
        using (var call = client.Push(deadline: DateTime.UtcNow.AddSeconds(20)))
        {
            await call.RequestStream.WriteAsync(new DataFrame { Header = Header(LoopbackCluster.Job, 0, ScalarType.Float32, [2]), Data = ByteString.CopyFrom(new byte[8]) });
            await call.RequestStream.CompleteAsync();
            Assert.Equal(8, (await call.ResponseAsync).BytesReceived);
        }
        using var t = await receiving;
        var dup = await Push(client, Header(LoopbackCluster.Job, 0, ScalarType.Float32, [2]), 8);
        Assert.Equal(StatusCode.InvalidArgument, dup.StatusCode);
        Assert.Contains("duplicate", dup.Status.Detail);
    }
}
