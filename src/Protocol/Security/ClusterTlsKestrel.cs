using System.Net.Security;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;

namespace Jetpack.Protocol.Security;

/// <summary>Kestrel endpoints under <see cref="ClusterTls"/>: the coordinator's and every worker's, one way.</summary>
public static class ClusterTlsKestrel
{
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Serves this endpoint only over TLS with a client certificate from the cluster CA. A refused peer is
    /// logged naming its address and the reason: plaintext (the first byte is not a TLS handshake record, so
    /// the connection is closed before TLS starts), no client certificate, or one the CA did not issue.
    /// </summary>
    public static ListenOptions UseClusterTls(this ListenOptions listen, ClusterTls tls, ILogger log, string plane)
    {
        var alpn = listen.Protocols == HttpProtocols.Http1 ? SslApplicationProtocol.Http11 : SslApplicationProtocol.Http2;
        listen.Use(next => async connection =>
        {
            // Peek (examine, do not consume) the first byte: TLS starts with a handshake record.
            using var wait = new CancellationTokenSource(HandshakeTimeout);
            System.IO.Pipelines.ReadResult first;
            try { first = await connection.Transport.Input.ReadAsync(wait.Token); }
            catch (OperationCanceledException) { return; }                          // said nothing: closed
            var buffer = first.Buffer;
            if (buffer.IsEmpty) return;
            byte kind = buffer.FirstSpan[0];
            connection.Transport.Input.AdvanceTo(buffer.Start, buffer.Start);
            if (kind != ClusterTls.HandshakeRecord)
            {
                log.LogWarning("TLS: refused a plaintext connection from {Remote} to the {Plane} ({Local}): this endpoint requires TLS with a client certificate from the cluster CA",
                               connection.RemoteEndPoint, plane, connection.LocalEndPoint);
                return;
            }
            await next(connection);
        });
        listen.UseHttps(new TlsHandshakeCallbackOptions
        {
            HandshakeTimeout = HandshakeTimeout,
            OnConnection = context => ValueTask.FromResult(tls.ServerOptions(
                why => log.LogWarning("TLS: refused {Remote} on the {Plane}: {Reason}", context.ClientHelloInfo.ServerName is { Length: > 0 } sni ? $"{context.Connection.RemoteEndPoint} ({sni})" : context.Connection.RemoteEndPoint, plane, why),
                alpn)),
        });
        return listen;
    }
}
