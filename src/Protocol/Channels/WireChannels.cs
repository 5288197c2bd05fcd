using System.Net.Sockets;
using Grpc.Net.Client;
using Jetpack.Protocol.Codec;

namespace Jetpack.Protocol.Channels;

/// <summary>
/// The one way to open an h2c channel to a worker or coordinator: HTTP/2 windows widened from their
/// defaults (so that a sender is not stalled waiting for window updates), no Nagle delay, and the
/// wire's message limits. Used by the workers' peer channels, the launcher and the coordinator's driver.
/// </summary>
public static class WireChannels
{
    /// <summary>HTTP/2 stream/connection windows on both sides (Kestrel and the client handler).</summary>
    public const int StreamWindowBytes = 8 << 20;

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
}
