using System.Net.Sockets;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Wire;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// One gRPC channel (h2c) to every rank of the job, each carrying the cluster token. HTTP/2 windows
/// are widened from their defaults so that a sender is not stalled waiting for window updates.
/// </summary>
public sealed class PeerChannels : IDisposable
{
    /// <summary>HTTP/2 stream/connection windows on both sides (Kestrel and the client handler).</summary>
    public const int StreamWindowBytes = 8 << 20;

    private readonly GrpcChannel?[] channels;
    private readonly CallInvoker?[] invokers;

    public PeerChannels(IReadOnlyList<string> peers, int self, ClusterToken token, WireLimits limits)
    {
        Addresses = peers;
        channels = new GrpcChannel?[peers.Count];
        invokers = new CallInvoker?[peers.Count];
        for (int r = 0; r < peers.Count; r++)
        {
            if (r == self) continue;
            channels[r] = Open(peers[r], limits);
            invokers[r] = channels[r]!.Intercept(new ClusterTokenCallInterceptor(token));
        }
    }

    public IReadOnlyList<string> Addresses { get; }

    public Protocol.Wire.DataPlane.DataPlaneClient Data(int rank) => new(invokers[rank] ?? throw new ArgumentException($"no channel to rank {rank}"));

    /// <summary>An h2c channel to <paramref name="hostPort"/> with the wire's message limits.</summary>
    public static GrpcChannel Open(string hostPort, WireLimits limits) =>
        GrpcChannel.ForAddress($"http://{hostPort}", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                InitialHttp2StreamWindowSize = StreamWindowBytes,
                EnableMultipleHttp2Connections = true,
                PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
                ConnectTimeout = TimeSpan.FromSeconds(10),
                ConnectCallback = async (ctx, ct) =>
                {
                    // no Nagle delay on small frames (acks, headers)
                    var s = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    try { await s.ConnectAsync(ctx.DnsEndPoint, ct); return new NetworkStream(s, ownsSocket: true); }
                    catch { s.Dispose(); throw; }
                },
            },
            MaxReceiveMessageSize = limits.MaxFrameBytes,
            MaxSendMessageSize = limits.MaxFrameBytes,
        });

    public void Dispose()
    {
        foreach (var c in channels) c?.Dispose();
    }
}
