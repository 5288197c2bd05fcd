using System.Buffers.Binary;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Grpc.Core;
using Jetpack.Protocol.Security;

namespace Jetpack.Tests.Security;

/// <summary>A hand-made TCP data plane client for the TLS tests (also linked into Coordinator.Tests' rig tests).</summary>
public static class DataPlaneHello
{
    /// <summary>Opens the TCP data plane at <paramref name="host"/>:<paramref name="port"/> (TLS with <paramref name="tls"/>, else
    /// plaintext), says hello (<paramref name="version"/>) with the token and returns the reply's status; a port that closes first
    /// (a TLS port met in clear text) throws EndOfStreamException or IOException.</summary>
    public static StatusCode Say(string host, int port, ClusterToken token, SslClientAuthenticationOptions? tls, byte version = 1)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 20_000, SendTimeout = 20_000 };
        socket.Connect(host, port);
        using Stream stream = tls is null ? new NetworkStream(socket) : new SslStream(new NetworkStream(socket));
        if (stream is SslStream ssl) ssl.AuthenticateAsClient(tls!);
        stream.Write("JPKD"u8);
        stream.WriteByte(version);
        var payload = Encoding.ASCII.GetBytes(token.Value);
        var head = new byte[5];
        head[0] = 0x10;
        BinaryPrimitives.WriteInt32LittleEndian(head.AsSpan(1), payload.Length);
        stream.Write(head);
        stream.Write(payload);
        stream.ReadExactly(head);                                                          // the receiver's reply frame (or the refusal's end)
        return (StatusCode)head[0];
    }
}
