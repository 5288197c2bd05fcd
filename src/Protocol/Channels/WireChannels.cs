using System.Net.Http;
using System.Net.Sockets;
using Grpc.Net.Client;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;

namespace Jetpack.Protocol.Channels;

/// <summary>
/// The one way to open a channel (h2c, or mutual TLS) to a worker or coordinator: HTTP/2 windows widened from their
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

    /// <summary>A channel to <paramref name="hostPort"/> with the wire's message limits: h2c, or with <paramref name="tls"/>
    /// HTTPS that presents this node's certificate and accepts only a server certificate from the cluster CA.</summary>
    /// <summary>
    /// HTTP/2 keepalive for control channels (coordinator ↔ worker): a ping after 5 s of silence, and a connection
    /// whose ping is not answered within 10 s is closed. Without it a connection through a link that went down stays
    /// open, and every later call on it waits for TCP's retransmission backoff (≈ 20 s more after a 30 s outage)
    /// instead of connecting afresh. Loose enough for a loaded machine; the data plane, whose streams are busy, does
    /// not use it.
    /// </summary>
    public static SocketsHttpHandler WithKeepAlive(this SocketsHttpHandler handler)
    {
        handler.KeepAlivePingDelay = TimeSpan.FromSeconds(5);
        handler.KeepAlivePingTimeout = TimeSpan.FromSeconds(10);
        handler.KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always;
        return handler;
    }

    /// <param name="keepAlive">a control channel: see <see cref="WithKeepAlive"/></param>
    public static GrpcChannel Open(string hostPort, WireLimits limits, ClusterTls? tls = null, bool keepAlive = false) =>
        GrpcChannel.ForAddress($"{ClusterTls.Scheme(tls)}://{hostPort}", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                SslOptions = tls?.ClientOptions() ?? new System.Net.Security.SslClientAuthenticationOptions(),
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
            } is var handler && keepAlive ? handler.WithKeepAlive() : handler,
            MaxReceiveMessageSize = limits.MaxFrameBytes,
            MaxSendMessageSize = limits.MaxFrameBytes,
        });
}
