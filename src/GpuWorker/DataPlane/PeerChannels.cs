using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Jetpack.Protocol.Channels;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Wire;
using Torch = TorchSharp.torch;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// One gRPC channel (h2c, <see cref="WireChannels.Open"/>) to every rank of the job, each carrying the cluster token.
/// Tensors go to a peer by <see cref="PushAsync"/>, over gRPC or, with
/// <see cref="DataPlaneTransport.Tcp"/>, over a raw TCP link whose port the peer's Health call names.
/// </summary>
public sealed class PeerChannels : IDisposable
{
    private readonly GrpcChannel?[] channels;
    private readonly CallInvoker?[] invokers;
    private readonly TcpPeerLink?[] links;

    public PeerChannels(IReadOnlyList<string> peers, int self, ClusterToken token, WireLimits limits, DataPlaneTransport transport = DataPlaneTransport.Grpc)
    {
        Addresses = peers;
        channels = new GrpcChannel?[peers.Count];
        invokers = new CallInvoker?[peers.Count];
        links = new TcpPeerLink?[peers.Count];
        for (int r = 0; r < peers.Count; r++)
        {
            if (r == self) continue;
            channels[r] = WireChannels.Open(peers[r], limits);
            var invoker = invokers[r] = channels[r]!.Intercept(new ClusterTokenCallInterceptor(token));
            if (transport == DataPlaneTransport.Tcp)
            {
                int rank = r;
                links[r] = new TcpPeerLink(r, peers[r][..peers[r].LastIndexOf(':')], async ct =>
                {
                    var health = await new WorkerControl.WorkerControlClient(invoker).HealthAsync(new HealthRequest(), cancellationToken: ct);
                    return health.DataPort > 0 ? health.DataPort
                        : throw new InvalidOperationException($"rank {rank} at {peers[rank]} serves no TCP data plane (its Health names no data port)");
                }, token);
            }
        }
    }

    public IReadOnlyList<string> Addresses { get; }

    public Protocol.Wire.DataPlane.DataPlaneClient Data(int rank) => new(invokers[rank] ?? throw new ArgumentException($"no channel to rank {rank}"));

    /// <summary>Sends one tensor to <paramref name="rank"/> under <paramref name="key"/> by this channel set's transport.</summary>
    /// <param name="readable">a contiguous CPU tensor (<see cref="TensorCodec.Readable"/>), held until the task ends</param>
    /// <param name="buffer">the gRPC path's chunk buffer (never used by two sends at once)</param>
    public Task PushAsync(int rank, MailKey key, Torch.Tensor readable, byte[] buffer, DateTime deadline, CancellationToken ct) =>
        links[rank] is { } link
            ? link.PushAsync(key, readable, deadline, ct)
            : DataPlaneSender.PushAsync(Data(rank), key, readable, buffer, deadline, ct);

    public void Dispose()
    {
        foreach (var l in links) l?.Dispose();
        foreach (var c in channels) c?.Dispose();
    }
}
