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
    /// <summary>HTTP/2 stream window on both sides (Kestrel and the client handler): a whole 8 MiB piece in flight.</summary>
    public const int StreamWindowBytes = 8 << 20;

    /// <summary>HTTP/2 connection window of Kestrel: the pieces of several concurrent pushes from one peer.</summary>
    public const int ConnectionWindowBytes = 4 * StreamWindowBytes;

    /// <summary>
    /// Kestrel's SETTINGS_MAX_FRAME_SIZE (HTTP/2's default is 16 KiB): a sender that honours it may
    /// send a 1 MiB gRPC message in one DATA frame instead of 64.
    /// </summary>
    public const int MaxFrameBytes = 1 << 20;

    /// <summary>The data plane's HTTP/2 limits on a Kestrel server (the worker's, and the benchmark's bare HTTP/2 sink).</summary>
    public static void ConfigureServer(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerLimits limits)
    {
        limits.Http2.InitialConnectionWindowSize = ConnectionWindowBytes;
        limits.Http2.InitialStreamWindowSize = StreamWindowBytes;
        limits.Http2.MaxFrameSize = MaxFrameBytes;
        limits.MaxRequestBodySize = null;                     // a Push is a stream of bounded frames, checked by the codec
    }

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
