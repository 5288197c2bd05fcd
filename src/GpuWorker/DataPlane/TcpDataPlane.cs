using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// Framing of the raw TCP data plane. A connection opens with <see cref="Magic"/>, a version byte
/// and a frame holding the cluster token; the receiver answers with a reply frame. Then, any number
/// of times: a frame holding one <see cref="DataHeader"/> followed by exactly
/// <c>header.tensor.byte_length</c> raw bytes, answered by a reply frame (status 0 and a
/// <see cref="DataAck"/>, or a gRPC status code and the refusal's text, after which the receiver
/// closes the connection). A frame is one kind byte, a little-endian int32 length and the payload.
/// </summary>
internal static class TcpFraming
{
    public static ReadOnlySpan<byte> Magic => "JPKD"u8;
    public const byte Version = 1;
    public const byte TokenFrame = 0x10, HeaderFrame = 0x11;
    /// <summary>Bound on every frame's payload (headers, tokens, replies): tensor bytes do not travel in frames.</summary>
    public const int MaxFrameBytes = 64 << 10;

    public static void SendAll(Socket s, ReadOnlySpan<byte> data)
    {
        while (data.Length > 0) data = data[s.Send(data)..];
    }

    /// <summary>Fills <paramref name="into"/>; false when the connection ended cleanly before its first byte.</summary>
    public static bool ReceiveAll(Socket s, Span<byte> into)
    {
        int got = 0;
        while (got < into.Length)
        {
            int n = s.Receive(into[got..]);
            if (n == 0)
            {
                if (got == 0) return false;
                throw new EndOfStreamException($"the connection closed after {got} of {into.Length} bytes");
            }
            got += n;
        }
        return true;
    }

    public static void WriteFrame(Socket s, byte kind, ReadOnlySpan<byte> payload)
    {
        Span<byte> head = stackalloc byte[5];
        head[0] = kind;
        BinaryPrimitives.WriteInt32LittleEndian(head[1..], payload.Length);
        SendAll(s, head);
        SendAll(s, payload);
    }

    /// <summary>The next frame, or null when the connection ended cleanly between frames.</summary>
    public static (byte Kind, byte[] Payload)? ReadFrame(Socket s, string what)
    {
        Span<byte> head = stackalloc byte[5];
        if (!ReceiveAll(s, head)) return null;
        int n = BinaryPrimitives.ReadInt32LittleEndian(head[1..]);
        if (n < 0 || n > MaxFrameBytes) throw WireErrors.Invalid($"{what}: a frame of {n} bytes (limit {MaxFrameBytes})");
        var payload = new byte[n];
        if (!ReceiveAll(s, payload)) throw new EndOfStreamException($"{what}: the connection closed inside a frame");
        return (head[0], payload);
    }

    public static void WriteReply(Socket s, StatusCode code, ReadOnlySpan<byte> payload) => WriteFrame(s, (byte)code, payload);

    /// <summary>Reads a reply; a refusal becomes the <see cref="RpcException"/> a gRPC caller would have got.</summary>
    public static byte[] ReadReply(Socket s, string what)
    {
        var (code, payload) = ReadFrame(s, what) ?? throw new EndOfStreamException($"{what}: the receiver closed the connection without a reply");
        if (code != 0) throw new RpcException(new Status((StatusCode)code, Encoding.UTF8.GetString(payload)));
        return payload;
    }
}

/// <summary>
/// The receiving side of the raw TCP data plane: a listener next to the worker's gRPC port, one
/// thread per sender connection. Every tensor goes through <see cref="PeerMailbox.Deliver(DataHeader, Func{TensorAssembler, string, CancellationToken, Task}, CancellationToken)"/>
/// — sender, tag, dtype, shape and size checked before a byte of data is read — and its bytes are
/// received straight into the destination tensor. A refusal is answered with its status and text,
/// then the connection is closed (after draining what the sender still had in flight, so that it
/// reads the answer rather than a reset).
/// </summary>
public sealed class TcpDataPlaneServer : IDisposable
{
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(5);

    private readonly Socket listener;
    private readonly PeerMailbox mailbox;
    private readonly ClusterToken token;
    private readonly CancellationTokenSource stop = new();
    private readonly ConcurrentDictionary<Socket, byte> open = new();
    private int disposed;

    public TcpDataPlaneServer(IPAddress address, int port, PeerMailbox mailbox, ClusterToken token)
    {
        this.mailbox = mailbox;
        this.token = token;
        listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(address, port));
            listener.Listen(128);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new InvalidOperationException($"rank {mailbox.Membership.Rank}: cannot listen for the TCP data plane on {address}:{port}: {e.Message}", e);
        }
        Port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        _ = Task.Run(AcceptLoop);
    }

    public int Port { get; }

    private async Task AcceptLoop()
    {
        while (!stop.IsCancellationRequested)
        {
            Socket s;
            try { s = await listener.AcceptAsync(stop.Token); }
            catch (Exception) { return; }                                   // stopped
            s.NoDelay = true;
            open[s] = 0;
            new Thread(() => Serve(s)) { IsBackground = true, Name = $"tcp data plane rank {mailbox.Membership.Rank}" }.Start();
        }
    }

    private void Serve(Socket s)
    {
        string who = $"rank {mailbox.Membership.Rank}: TCP data plane connection from {s.RemoteEndPoint}";
        try
        {
            if (!Handshake(s, who)) return;
            while (!stop.IsCancellationRequested)
            {
                s.ReceiveTimeout = 0;                                       // idle between tensors: no limit
                var frame = TcpFraming.ReadFrame(s, who);
                if (frame is null) return;                                  // the sender closed the connection
                s.ReceiveTimeout = (int)Math.Min(int.MaxValue, mailbox.Deadline.TotalMilliseconds);
                try
                {
                    if (frame.Value.Kind != TcpFraming.HeaderFrame) throw WireErrors.Invalid($"{who}: frame of kind {frame.Value.Kind} where a data header was due");
                    DataHeader header;
                    try { header = DataHeader.Parser.ParseFrom(frame.Value.Payload); }
                    catch (InvalidProtocolBufferException e) { throw WireErrors.Invalid($"{who}: the data header does not parse: {e.Message}"); }
                    if (header.Tensor is null) throw WireErrors.Invalid($"{who}: the data header has no tensor header");
                    long n = mailbox.Deliver(header, (asm, what, _) => { Receive(s, asm, what); return Task.CompletedTask; }, stop.Token)
                                    .GetAwaiter().GetResult();
                    TcpFraming.WriteReply(s, StatusCode.OK, new DataAck { BytesReceived = n }.ToByteArray());
                }
                catch (RpcException e)
                {
                    Refuse(s, e.StatusCode, e.Status.Detail);
                    return;
                }
            }
        }
        catch (Exception) { /* the connection broke or the server stops: the mailbox already failed the key if one was open */ }
        finally
        {
            open.TryRemove(s, out _);
            s.Dispose();
        }
    }

    private bool Handshake(Socket s, string who)
    {
        s.ReceiveTimeout = (int)HandshakeTimeout.TotalMilliseconds;
        Span<byte> hello = stackalloc byte[5];
        if (!TcpFraming.ReceiveAll(s, hello)) return false;
        if (!hello[..4].SequenceEqual(TcpFraming.Magic) || hello[4] != TcpFraming.Version)
        {
            Refuse(s, StatusCode.InvalidArgument, $"{who}: not a Jetpack TCP data plane client of version {TcpFraming.Version}");
            return false;
        }
        var frame = TcpFraming.ReadFrame(s, who);
        if (frame is not { Kind: TcpFraming.TokenFrame } f || !token.Matches(Encoding.ASCII.GetString(f.Payload)))
        {
            Refuse(s, StatusCode.Unauthenticated, $"rank {mailbox.Membership.Rank}: the TCP data plane needs the cluster token (missing or wrong)");
            return false;
        }
        TcpFraming.WriteReply(s, StatusCode.OK, []);
        return true;
    }

    /// <summary>Receives the rest of the tensor's bytes straight into its storage.</summary>
    private static void Receive(Socket s, TensorAssembler asm, string what)
    {
        while (true)
        {
            var into = asm.Remaining;
            if (into.Length == 0) return;
            int n = s.Receive(into);
            if (n == 0) throw new EndOfStreamException($"{what}: the sender closed the connection after {asm.Received} bytes");
            asm.Advance(n);
        }
    }

    /// <summary>Answers with the refusal, then reads and drops what the sender still sends until it closes (bounded in time).</summary>
    private static void Refuse(Socket s, StatusCode code, string detail)
    {
        try
        {
            TcpFraming.WriteReply(s, code, Encoding.UTF8.GetBytes(detail));
            s.Shutdown(SocketShutdown.Send);
            s.ReceiveTimeout = (int)DrainTimeout.TotalMilliseconds;
            var sink = new byte[64 << 10];
            var until = DateTime.UtcNow + DrainTimeout;
            while (DateTime.UtcNow < until && s.Receive(sink) > 0) { }
        }
        catch (Exception) { /* the sender is gone already */ }
    }

    /// <summary>Stops listening and closes every connection (a second call does nothing).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1) return;
        stop.Cancel();
        listener.Dispose();
        foreach (var s in open.Keys) s.Dispose();
    }
}

/// <summary>
/// The sending side of the raw TCP data plane towards one peer: a pool of authenticated connections
/// (one per push in flight; a finished push returns its connection). The peer's data port is asked
/// once through its gRPC Health call. Each push writes the header frame, then the tensor's storage
/// straight to the socket, then waits for the receiver's answer; the deadline bounds every blocking
/// call and cancelling closes the socket.
/// </summary>
public sealed class TcpPeerLink(int peer, string host, Func<CancellationToken, Task<int>> discoverPort, ClusterToken token) : IDisposable
{
    private readonly ConcurrentBag<Socket> idle = [];
    private readonly SemaphoreSlim portGate = new(1, 1);
    private int port;
    private bool disposed;

    public async Task PushAsync(MailKey key, Tensor readable, DateTime deadline, CancellationToken ct)
    {
        var header = key.ToHeader();
        header.Tensor = TensorCodec.Header("tensor", readable);
        string what = $"{key} to rank {peer}";
        var s = idle.TryTake(out var pooled) ? pooled : await ConnectAsync(deadline, ct);
        bool reusable = false;
        try
        {
            await Task.Run(() =>
            {
                using var _ = ct.Register(() => s.Dispose());               // a cancelled push ends its blocking calls at once
                int ms = (int)Math.Clamp((deadline - DateTime.UtcNow).TotalMilliseconds, 1, int.MaxValue);
                s.SendTimeout = ms;
                s.ReceiveTimeout = ms;
                TcpFraming.WriteFrame(s, TcpFraming.HeaderFrame, header.ToByteArray());
                if (readable.numel() > 0) TcpFraming.SendAll(s, readable.bytes);   // from the tensor's storage, no copy
                TcpFraming.ReadReply(s, what);
            }, CancellationToken.None);
            reusable = true;
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            throw new OperationCanceledException(ct);
        }
        finally
        {
            if (reusable && !disposed) idle.Add(s);
            else s.Dispose();
        }
    }

    private async Task<Socket> ConnectAsync(DateTime deadline, CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(TimeSpan.FromMilliseconds(Math.Max(1, (deadline - DateTime.UtcNow).TotalMilliseconds)));
        if (port == 0)
        {
            await portGate.WaitAsync(limit.Token);
            try { if (port == 0) port = await discoverPort(limit.Token); }
            finally { portGate.Release(); }
        }
        var s = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await s.ConnectAsync(host, port, limit.Token);
            await Task.Run(() =>
            {
                s.ReceiveTimeout = 10_000;
                Span<byte> hello = stackalloc byte[5];
                TcpFraming.Magic.CopyTo(hello);
                hello[4] = TcpFraming.Version;
                TcpFraming.SendAll(s, hello);
                TcpFraming.WriteFrame(s, TcpFraming.TokenFrame, Encoding.ASCII.GetBytes(token.Value));
                TcpFraming.ReadReply(s, $"TCP data plane handshake with rank {peer} at {host}:{port}");
            }, CancellationToken.None);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        disposed = true;
        while (idle.TryTake(out var s)) s.Dispose();
        portGate.Dispose();
    }
}
