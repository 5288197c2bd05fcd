using Grpc.Core;
using Grpc.Core.Interceptors;
using Jetpack.GpuWorker.DataPlane;
using Jetpack.Model.Distributed;
using Jetpack.Protocol.Channels;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;
using ExchangePhase = Jetpack.Model.Distributed.ExchangePhase;

namespace Jetpack.GpuWorker.Tests.DataPlane;

/// <summary>
/// The grpc-pull transport's serving side (<see cref="PeerOutbox"/>) against hand-made Pull calls on a real worker server:
/// an offered tensor is streamed once, exactly, with its header first; a pull from outside the job, for another
/// source, without the token or for a key nobody offers is refused with the right status and says why; and a pulled
/// tensor the receiver did not expect fails the receive naming source and phase, and the offer ends.
/// </summary>
public class DataPlanePullTests
{
    static readonly ExchangeTag Tag = new(4, 0, 2, ExchangePhase.Return);

    static Protocol.Wire.DataPlane.DataPlaneClient Client(LoopbackCluster c, int rank, ClusterToken? token)
    {
        var channel = WireChannels.Open(c.Nodes[rank].Address, WireLimits.Default);
        return new(token is null ? channel.CreateCallInvoker() : channel.Intercept(new ClusterTokenCallInterceptor(token)));
    }

    static PullRequest Request(string job, int source, int destination) =>
        new() { Key = MailKey.Exchange(job, Tag, source).ToHeader(), DestinationRank = destination };

    /// <summary>A hand-made Pull call: its request sent, its verdict still to come.</summary>
    static async Task<AsyncDuplexStreamingCall<PullMessage, DataFrame>> Pull(Protocol.Wire.DataPlane.DataPlaneClient client, PullRequest request)
    {
        var call = client.Pull(deadline: DateTime.UtcNow.AddSeconds(20));
        try { await call.RequestStream.WriteAsync(new PullMessage { Request = request }); }
        catch (RpcException) { /* refused at once (no token): the status follows on the response stream */ }
        return call;
    }

    static async Task<List<DataFrame>> ReadAll(AsyncDuplexStreamingCall<PullMessage, DataFrame> call)
    {
        var frames = new List<DataFrame>();
        while (await call.ResponseStream.MoveNext(CancellationToken.None)) frames.Add(call.ResponseStream.Current);
        return frames;
    }

    /// <summary>Reads one whole tensor's frames, answers <paramref name="verdict"/>, and reads on to the end of the call.</summary>
    static async Task<List<DataFrame>> ReadTensor(AsyncDuplexStreamingCall<PullMessage, DataFrame> call, PullVerdict verdict)
    {
        var frames = new List<DataFrame>();
        long total = -1, got = 0;
        while (got != total && await call.ResponseStream.MoveNext(CancellationToken.None))
        {
            var f = call.ResponseStream.Current;
            frames.Add(f);
            if (f.Header is not null) total = f.Header.Tensor.ByteLength;
            got += f.Data.Length;
        }
        await call.RequestStream.WriteAsync(new PullMessage { Verdict = verdict });
        await call.RequestStream.CompleteAsync();
        Assert.Empty(await ReadAll(call));                                  // nothing after the tensor
        return frames;
    }

    [Fact]
    public async Task AnOfferedTensorIsStreamedExactlyWithItsHeaderFirst()
    {
        await using var c = await LoopbackCluster.StartAsync(2, limits: WireLimits.Default with { ChunkBytes = 1024 });
        using var t = arange(1000, ScalarType.Float32);                   // 4000 bytes: 4 chunks, the last one short
        var offered = c.Nodes[1].Mailbox.Outbox.OfferAsync(0, MailKey.Exchange(LoopbackCluster.Job, Tag, 1), t, CancellationToken.None);
        using var call = await Pull(Client(c, 1, c.Token), Request(LoopbackCluster.Job, 1, 0));
        var frames = await ReadTensor(call, new PullVerdict());
        Assert.Equal(4, frames.Count);
        Assert.NotNull(frames[0].Header);
        Assert.All(frames.Skip(1), f => Assert.Null(f.Header));
        Assert.Equal(MailKey.Exchange(LoopbackCluster.Job, Tag, 1), MailKey.From(frames[0].Header));
        Assert.Equal([1000L], frames[0].Header.Tensor.Shape);
        var bytes = frames.SelectMany(f => f.Data.ToByteArray()).ToArray();
        Assert.Equal(t.bytes.ToArray(), bytes);
        Assert.Equal(4000, await offered);
        Assert.Equal(0, c.Nodes[1].Mailbox.Outbox.Pending);
    }

    [Theory]
    [InlineData("other-job", 0, "job 'other-job'")]
    [InlineData(LoopbackCluster.Job, 2, "from rank 2")]
    [InlineData(LoopbackCluster.Job, 1, "from rank 1")]      // the serving rank itself
    public async Task PullsFromOutsideTheCurrentJobAreRefused(string job, int destination, string says)
    {
        await using var c = await LoopbackCluster.StartAsync(2);
        using var call = await Pull(Client(c, 1, c.Token), Request(job, 1, destination));
        var e = await Assert.ThrowsAsync<RpcException>(() => ReadAll(call));
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        Assert.Contains(says, e.Status.Detail);
    }

    [Fact]
    public async Task APullForAnotherSourceOrWithoutTheTokenIsRefused()
    {
        await using var c = await LoopbackCluster.StartAsync(3);
        using (var call = await Pull(Client(c, 1, c.Token), Request(LoopbackCluster.Job, 2, 0)))
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => ReadAll(call));
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            Assert.Contains("from rank 2 here", e.Status.Detail);
        }
        foreach (var token in new[] { null, ClusterToken.Generate() })
        {
            using var call = await Pull(Client(c, 1, token), Request(LoopbackCluster.Job, 1, 0));
            var e = await Assert.ThrowsAsync<RpcException>(() => ReadAll(call));
            Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        }
    }

    [Fact]
    public async Task APullThatNobodyOffersEndsAtTheDeadlineNamingTheKey()
    {
        var deadline = TimeSpan.FromSeconds(1);
        await using var c = await LoopbackCluster.StartAsync(2, deadline);
        using var call = await Pull(Client(c, 1, c.Token), Request(LoopbackCluster.Job, 1, 0));
        var e = await Assert.ThrowsAsync<RpcException>(() => ReadAll(call));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.Contains("rank 1", e.Status.Detail);
        Assert.Contains("pulled by rank 0", e.Status.Detail);
        Assert.Contains("Return", e.Status.Detail);
        Assert.Equal(0, c.Nodes[1].Mailbox.Outbox.Pending);
    }

    [Fact]
    public async Task AWithdrawnOfferIsGoneAndItsPullEndsAtTheDeadline()
    {
        var deadline = TimeSpan.FromSeconds(1);
        await using var c = await LoopbackCluster.StartAsync(2, deadline);
        using var t = arange(10, ScalarType.Float32);
        using var withdraw = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => c.Nodes[1].Mailbox.Outbox.OfferAsync(0, MailKey.Exchange(LoopbackCluster.Job, Tag, 1), t, withdraw.Token));
        Assert.Equal(0, c.Nodes[1].Mailbox.Outbox.Pending);
        using var call = await Pull(Client(c, 1, c.Token), Request(LoopbackCluster.Job, 1, 0));
        var e = await Assert.ThrowsAsync<RpcException>(() => ReadAll(call));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
    }

    [Fact]
    public async Task AnUnexpectedShapeFailsTheReceiveNamingSourceAndPhaseAndTheOfferWithTheRefusal()
    {
        await using var c = await LoopbackCluster.StartAsync(2, transport: DataPlaneTransport.GrpcPull);
        var key = MailKey.Exchange(LoopbackCluster.Job, Tag, 1);
        using var channels = new PeerChannels(c.Nodes.Select(n => n.Address).ToList(), 0, c.Token, WireLimits.Default, DataPlaneTransport.GrpcPull,
                                              outbox: c.Nodes[0].Mailbox.Outbox);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var receiving = channels.ReceiveAsync(c.Nodes[0].Mailbox, 1, key, new Expectation(ScalarType.Float32, [2, 3]), DateTime.UtcNow.AddSeconds(20), cts.Token);
        using var t = zeros([2, 4], ScalarType.Float32);
        var offered = c.Nodes[1].Mailbox.Outbox.OfferAsync(0, key, t, cts.Token);
        var failed = await Assert.ThrowsAsync<ExchangeFailedException>(() => receiving);
        Assert.Contains("rank 0", failed.Message);
        Assert.Contains("from rank 1", failed.Message);
        Assert.Contains("Return", failed.Message);
        Assert.Contains("shape [2, 4], expected [2, 3]", failed.Message);
        // the sender's offer ends with the receiver's refusal, though its few bytes were all written before it
        var refused = await Assert.ThrowsAsync<RpcException>(() => offered);
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains("rank 0", refused.Status.Detail);
        Assert.Contains("shape [2, 4], expected [2, 3]", refused.Status.Detail);
        Assert.Equal(0, c.Nodes[1].Mailbox.Outbox.Pending);
        c.Nodes[0].Mailbox.Forget(key);
    }

    /// <summary>
    /// The product's sender (<see cref="PeerChannels.PushAsync"/> offering on rank 0) against the product's receiver pulling on rank 1:
    /// whatever the receiver refuses — a dtype, a shape found after many chunks were written, a size above its limits — the
    /// sender's send fails with the receiver's status and reason, as a Push's or a TCP send's does, not as a broken stream.
    /// </summary>
    [Theory]
    [InlineData(4, ScalarType.BFloat16, 4, 0L, StatusCode.InvalidArgument, "dtype Float32, expected Bfloat16")]
    [InlineData(3 << 18, ScalarType.Float32, (3 << 18) + 1, 0L, StatusCode.InvalidArgument, "shape [786432], expected [786433]")]   // 3 MiB: refused with chunks in flight
    [InlineData(1 << 16, ScalarType.Float32, 1 << 16, 1L << 16, StatusCode.InvalidArgument, "exceeds the limit")]
    public async Task ThePullingReceiversRefusalReachesTheSenderWithItsStatusAndText(long n, ScalarType expectedDtype, long expectedN, long receiverMaxBytes,
                                                                                     StatusCode code, string says)
    {
        await using var c = await LoopbackCluster.StartAsync(2, transport: DataPlaneTransport.GrpcPull);
        var addresses = c.Nodes.Select(n => n.Address).ToList();
        var key = MailKey.Exchange(LoopbackCluster.Job, Tag, 0);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        var receiverLimits = receiverMaxBytes > 0 ? WireLimits.Default with { MaxTensorBytes = receiverMaxBytes } : WireLimits.Default;
        var mailbox = new PeerMailbox(c.Nodes[1].Membership, receiverLimits, TimeSpan.FromSeconds(20));
        using var sender = new PeerChannels(addresses, 0, c.Token, WireLimits.Default, DataPlaneTransport.GrpcPull, outbox: c.Nodes[0].Mailbox.Outbox);
        using var receiver = new PeerChannels(addresses, 1, c.Token, WireLimits.Default, DataPlaneTransport.GrpcPull, outbox: mailbox.Outbox);
        var receiving = receiver.ReceiveAsync(mailbox, 0, key, new Expectation(expectedDtype, [expectedN]), deadline, CancellationToken.None);
        using var piece = ones(n, ScalarType.Float32);
        var e = await Assert.ThrowsAsync<RpcException>(() => sender.PushAsync(1, key, piece, new byte[1024], deadline, CancellationToken.None));
        Assert.Equal(code, e.StatusCode);
        Assert.Contains("rank 1", e.Status.Detail);
        Assert.Contains(says, e.Status.Detail);
        await Assert.ThrowsAsync<ExchangeFailedException>(() => receiving);
        Assert.Equal(0, c.Nodes[0].Mailbox.Outbox.Pending);
        mailbox.Forget(key);
    }
}
