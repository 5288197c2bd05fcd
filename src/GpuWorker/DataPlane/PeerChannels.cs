using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Jetpack.Protocol.Channels;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Model.Distributed;
using Jetpack.Protocol.Wire;
using Torch = TorchSharp.torch;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// One gRPC channel (<see cref="WireChannels.Open"/>: h2c, or mutual TLS with <see cref="ClusterTls"/>) to every rank of the job, each carrying the cluster token.
/// Tensors go to a peer by <see cref="PushAsync"/>, over gRPC or, with
/// <see cref="DataPlaneTransport.Tcp"/>, over a raw TCP link whose port the peer's Health call names; with
/// <see cref="DataPlaneTransport.GrpcPull"/> they are offered instead, and the peer's <see cref="ReceiveAsync"/> pulls them.
/// </summary>
public sealed class PeerChannels : IDisposable
{
    private readonly GrpcChannel?[] channels;
    private readonly CallInvoker?[] invokers;
    private readonly TcpPeerLink?[] links;
    private readonly int self;
    private readonly DataPlaneTransport transport;
    private readonly PeerOutbox? outbox;
    private readonly string?[] planes;                                    // each peer's data plane, once its Health named it

    /// <param name="liveness">when set, every peer is pinged while these channels live (<see cref="PeerLiveness"/>)</param>
    /// <param name="outbox">where this rank offers its tensors (<see cref="DataPlaneTransport.GrpcPull"/>: required; the mailbox's; unused by the other transports)</param>
    public PeerChannels(IReadOnlyList<string> peers, int self, ClusterToken token, WireLimits limits, DataPlaneTransport transport = DataPlaneTransports.Default,
                        ClusterTls? tls = null, LivenessOptions? liveness = null, PeerOutbox? outbox = null)
    {
        if (transport == DataPlaneTransport.GrpcPull && outbox is null)
            throw new ArgumentException("the grpc-pull data plane needs this rank's outbox (PeerMailbox.Outbox)", nameof(outbox));
        Addresses = peers;
        this.self = self;
        this.transport = transport;
        this.outbox = transport == DataPlaneTransport.GrpcPull ? outbox : null;       // the other transports send by themselves
        channels = new GrpcChannel?[peers.Count];
        invokers = new CallInvoker?[peers.Count];
        links = new TcpPeerLink?[peers.Count];
        planes = new string?[peers.Count];
        for (int r = 0; r < peers.Count; r++)
        {
            if (r == self) continue;
            channels[r] = WireChannels.Open(peers[r], limits, tls);
            var invoker = invokers[r] = channels[r]!.Intercept(new ClusterTokenCallInterceptor(token));
            if (transport == DataPlaneTransport.Tcp)
            {
                int rank = r;
                links[r] = new TcpPeerLink(r, peers[r][..peers[r].LastIndexOf(':')], async ct =>
                {
                    var health = await new WorkerControl.WorkerControlClient(invoker).HealthAsync(new HealthRequest(), cancellationToken: ct);
                    return health.DataPort > 0 ? health.DataPort
                        : throw new InvalidOperationException($"rank {rank} at {peers[rank]} serves no TCP data plane (its Health names no data port)");
                }, token, tls);
            }
        }
        if (liveness is not null) Liveness = new PeerLiveness(this, self, liveness);
    }

    /// <summary>The peers' liveness while these channels live (null: not watched).</summary>
    public PeerLiveness? Liveness { get; }

    /// <summary>The token-carrying call invoker of <paramref name="rank"/>'s channel.</summary>
    public CallInvoker Invoker(int rank) => invokers[rank] ?? throw new ArgumentException($"no channel to rank {rank}");

    public IReadOnlyList<string> Addresses { get; }

    public Protocol.Wire.DataPlane.DataPlaneClient Data(int rank) => new(Invoker(rank));

    /// <summary>Sends one tensor to <paramref name="rank"/> under <paramref name="key"/> by this channel set's transport.</summary>
    /// <param name="readable">a contiguous CPU tensor (<see cref="TensorCodec.Readable"/>), held until the task ends</param>
    /// <param name="buffer">the gRPC path's chunk buffer (never used by two sends at once)</param>
    /// <remarks>Fails naming both planes, at once, when <paramref name="rank"/> sends by another data plane (<see cref="SamePlaneAsync"/>):
    /// the send is then withdrawn, and ended before this task ends.</remarks>
    public async Task PushAsync(int rank, MailKey key, Torch.Tensor readable, byte[] buffer, DateTime deadline, CancellationToken ct)
    {
        using var send = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var plane = SamePlaneAsync(rank, deadline, ct);
        var sending = Send(rank, key, readable, buffer, deadline, send.Token);
        var first = await Task.WhenAny(plane, sending);
        if (first == plane && plane.IsFaulted)
        {
            send.Cancel();                                                  // the peer would never take it
            try { await sending; } catch { /* withdrawn: the plane is the cause */ }
        }
        else if (first == sending && !sending.IsCompletedSuccessfully) await sending;   // its own failure, without waiting for the check
        await plane;
        await sending;
    }

    private Task Send(int rank, MailKey key, Torch.Tensor readable, byte[] buffer, DateTime deadline, CancellationToken ct) =>
        links[rank] is { } link ? link.PushAsync(key, readable, deadline, ct)
        : outbox is not null ? outbox.OfferAsync(rank, key, readable, ct)             // served when the peer pulls it; withdrawn when ct ends the step
        : DataPlaneSender.PushAsync(Data(rank), key, readable, buffer, deadline, ct);

    /// <summary>
    /// Receiver: posts in <paramref name="mailbox"/> what is expected from <paramref name="rank"/> under <paramref name="key"/>
    /// (<see cref="PeerMailbox.Expect"/>) and, with <see cref="DataPlaneTransport.GrpcPull"/>, pulls it from that rank. The task
    /// completes with the tensor or fails naming the key; <paramref name="ct"/> ends the pull (the step's failure or deadline).
    /// </summary>
    public Task<Torch.Tensor> ReceiveAsync(PeerMailbox mailbox, int rank, MailKey key, Expectation e, DateTime deadline, CancellationToken ct)
    {
        var arrived = mailbox.Expect(key, e);
        if (transport == DataPlaneTransport.GrpcPull) _ = PullAsync(mailbox, rank, key, deadline, ct);
        return FromSamePlane(mailbox, rank, key, e, arrived, deadline, ct);
    }

    /// <summary>The received tensor, once <paramref name="rank"/> is known to send by this rank's plane; a peer on another plane
    /// fails the key's receive at once (else it waited out the deadline for a push or an offer that never comes).</summary>
    private async Task<Torch.Tensor> FromSamePlane(PeerMailbox mailbox, int rank, MailKey key, Expectation e, Task<Torch.Tensor> arrived, DateTime deadline, CancellationToken ct)
    {
        var plane = SamePlaneAsync(rank, deadline, ct);
        if (await Task.WhenAny(plane, arrived) == plane && plane.Exception?.GetBaseException() is { } mixed) mailbox.Fail(key, mixed);
        var tensor = await arrived;
        try
        {
            await plane;
        }
        catch
        {
            if (e.Destination is null) tensor.Dispose();                   // a destination stays the caller's
            throw;
        }
        return tensor;
    }

    /// <summary>
    /// Completes when <paramref name="rank"/> sends by this rank's data plane, or cannot say (unreachable now: the step's own
    /// calls report that; asked again next time; an older worker naming none); fails naming both ranks and both planes when
    /// its Health names another. Every worker receives by every plane, but a grpc-pull rank waits for offers that a pushing
    /// rank never makes, and the reverse. Cost: one Health call per peer, until one answers.
    /// </summary>
    private async Task SamePlaneAsync(int rank, DateTime deadline, CancellationToken ct)
    {
        var plane = Volatile.Read(ref planes[rank]);
        if (plane is null)
        {
            try
            {
                var health = await new WorkerControl.WorkerControlClient(Invoker(rank)).HealthAsync(new HealthRequest(), deadline: deadline, cancellationToken: ct);
                Volatile.Write(ref planes[rank], plane = health.DataPlane);
            }
            catch (Exception x) when (x is RpcException or ObjectDisposedException) { return; }
        }
        if (plane.Length > 0 && plane != transport.Name())
            throw new ExchangeFailedException($"rank {self} uses the {transport.Name()} data plane but rank {rank} ({Addresses[rank]}) uses {plane}: start every worker with the same --data-plane");
    }

    /// <summary>
    /// One Pull call: the stream's first frame names the key asked for, and the mailbox takes it from there exactly as it takes a
    /// Push (sender, header and limits checked before any tensor exists). Any failure fails the key's receive. The verdict —
    /// taken whole, or this rank's refusal with its status — goes back on the call, so the sender's offer ends as a Push's would.
    /// </summary>
    private async Task PullAsync(PeerMailbox mailbox, int rank, MailKey key, DateTime deadline, CancellationToken ct)
    {
        string what = $"rank {self}: {key}";
        // The step's end cuts the call until the tensor is taken or refused; after that the call lives on (briefly) for the verdict:
        // a refusal fails this rank's step, and cutting the call then would race the verdict to the sender.
        using var cut = new CancellationTokenSource();
        var stepEnds = ct.Register(cut.Cancel);
        try
        {
            using var call = Data(rank).Pull(deadline: deadline, cancellationToken: cut.Token);
            await call.RequestStream.WriteAsync(new PullMessage { Request = new PullRequest { Key = key.ToHeader(), DestinationRank = self } }, cut.Token);
            if (!await call.ResponseStream.MoveNext(cut.Token))
                throw new ExchangeFailedException($"{what}: rank {rank} ended the pull without sending the tensor");
            var first = call.ResponseStream.Current;
            RpcException? refusal = null;
            try
            {
                if (first.Header is null || MailKey.From(first.Header) != key)
                    throw WireErrors.Invalid($"{what}: rank {rank} answered the pull with another tensor ({(first.Header is null ? "no header" : MailKey.From(first.Header)?.ToString() ?? "no tag")})");
                await mailbox.Deliver(first.Header, first.Data.Memory, call.ResponseStream, cut.Token, goesOn: true);
            }
            catch (RpcException x)
            {
                refusal = x;                                                // this rank's refusal, or the call's own end (then the verdict finds it gone)
            }
            await stepEnds.DisposeAsync();
            cut.CancelAfter(VerdictWait);
            try
            {
                await call.RequestStream.WriteAsync(new PullMessage
                {
                    Verdict = refusal is null ? new PullVerdict() : new PullVerdict { StatusCode = (int)refusal.StatusCode, Detail = refusal.Status.Detail },
                }, cut.Token);
                await call.RequestStream.CompleteAsync();
                while (await call.ResponseStream.MoveNext(cut.Token)) { }   // until the sender has read it and ended the call
            }
            catch (Exception) { /* the call is gone: the sender learns of a broken stream instead */ }
            if (refusal is not null) throw new ExchangeFailedException(refusal.Status.Detail, refusal);
        }
        catch (Exception x)
        {
            // Deliver failed the key itself when the refusal was its own; this covers the call (unreachable peer, its refusal, a cut)
            mailbox.Fail(key, x switch
            {
                ExchangeFailedException => x,
                RpcException rpc => new ExchangeFailedException($"{what}: the pull from rank {rank} failed: {rpc.StatusCode}: {rpc.Status.Detail}", x),
                _ => new ExchangeFailedException($"{what}: the pull from rank {rank} failed: {x.Message}", x),
            });
        }
        finally
        {
            await stepEnds.DisposeAsync();
        }
    }

    /// <summary>How long a pull's verdict may take to reach its sender once the tensor was taken or refused.</summary>
    private static readonly TimeSpan VerdictWait = TimeSpan.FromSeconds(5);

    public void Dispose()
    {
        Liveness?.Dispose();
        foreach (var l in links) l?.Dispose();
        foreach (var c in channels) c?.Dispose();
    }
}
