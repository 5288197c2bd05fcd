using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
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
/// With <see cref="ClusterTls"/> the connection opens with a TLS handshake (<see cref="SslStream"/>, a client
/// certificate from the cluster CA required), and the token frame stays as the second factor. Then either all of it travels
/// in SslStream's records (hello <see cref="Version"/>), or (hello <see cref="SealedVersion"/>, the default) the client adds a
/// <see cref="KeyShareFrame"/>, the reply carries the server's share, and from there on everything travels in
/// <see cref="SealedRecords"/> keyed from both shares.
/// Timeouts are the socket's (<see cref="Socket.ReceiveTimeout"/>), which NetworkStream and SslStream honour.
/// </summary>
internal static class TcpFraming
{
    public static ReadOnlySpan<byte> Magic => "JPKD"u8;
    public const byte Version = 1, SealedVersion = 2;
    public const byte TokenFrame = 0x10, HeaderFrame = 0x11, KeyShareFrame = 0x12;
    /// <summary>Bound on every frame's payload (headers, tokens, replies): tensor bytes do not travel in frames.</summary>
    public const int MaxFrameBytes = 64 << 10;

    /// <summary>
    /// Writes all of <paramref name="data"/>, straight from the caller's span (a tensor's storage). SslStream has span
    /// overloads since .NET 10 that encrypt from the span in records without renting a copy of it (measured: a 64 MiB
    /// span write allocated nothing), so TLS needs no staging buffer either; the former 64 KiB staging copy cost
    /// 5–30 % more CPU per byte (docs/measured/tls/).
    /// </summary>
    public static void SendAll(Stream s, ReadOnlySpan<byte> data) => s.Write(data);

    /// <summary>One read into <paramref name="into"/> (TLS: decrypted into it, see <see cref="SendAll"/>).</summary>
    public static int Read(Stream s, Span<byte> into) => s.Read(into);

    /// <summary>Fills <paramref name="into"/>; false when the connection ended cleanly before its first byte.</summary>
    public static bool ReceiveAll(Stream s, Span<byte> into)
    {
        int got = 0;
        while (got < into.Length)
        {
            int n = Read(s, into[got..]);
            if (n == 0)
            {
                if (got == 0) return false;
                throw new EndOfStreamException($"the connection closed after {got} of {into.Length} bytes");
            }
            got += n;
        }
        return true;
    }

    public static void WriteFrame(Stream s, byte kind, ReadOnlySpan<byte> payload)
    {
        Span<byte> head = stackalloc byte[5];
        head[0] = kind;
        BinaryPrimitives.WriteInt32LittleEndian(head[1..], payload.Length);
        SendAll(s, head);
        SendAll(s, payload);
    }

    /// <summary>The next frame, or null when the connection ended cleanly between frames.</summary>
    public static (byte Kind, byte[] Payload)? ReadFrame(Stream s, string what)
    {
        Span<byte> head = stackalloc byte[5];
        if (!ReceiveAll(s, head)) return null;
        int n = BinaryPrimitives.ReadInt32LittleEndian(head[1..]);
        if (n < 0 || n > MaxFrameBytes) throw WireErrors.Invalid($"{what}: a frame of {n} bytes (limit {MaxFrameBytes})");
        var payload = new byte[n];
        if (!ReceiveAll(s, payload)) throw new EndOfStreamException($"{what}: the connection closed inside a frame");
        return (head[0], payload);
    }

    /// <summary>Writes a reply and flushes it: the peer waits for it.</summary>
    public static void WriteReply(Stream s, StatusCode code, ReadOnlySpan<byte> payload)
    {
        WriteFrame(s, (byte)code, payload);
        s.Flush();
    }

    /// <summary>
    /// The stream TLS runs over: the socket's, batched. SslStream reads and writes one record (≤ 16 KiB) at a
    /// time; without batching every record is a system call, which cost 5× the throughput of plain TCP
    /// (`jetpack bench exchange --data-plane tcp,tcp+tls`). Once <see cref="BatchedStream.Batching"/> is on (after
    /// the handshake, whose messages must go out as written), writes collect until <see cref="BatchBytes"/> or a
    /// Flush (every frame that expects an answer is flushed); reads take what the socket holds, up to as much.
    /// </summary>
    public static BatchedStream ForTls(Socket socket) => new(new NetworkStream(socket, ownsSocket: false), BatchBytes);

    public const int BatchBytes = 256 << 10;

    /// <summary>
    /// Leaves TLS for <see cref="SealedRecords"/> once both key shares crossed it: the returned stream reads and writes the
    /// socket directly (the TLS session is disposed with it). Nothing may be left unread in <paramref name="transport"/>:
    /// the peer sends no sealed record before it has the reply that carries the last share.
    /// </summary>
    public static Stream Seal(Socket socket, Stream tlsSession, BatchedStream transport, ReadOnlySpan<byte> clientShare, ReadOnlySpan<byte> serverShare, bool client, string peer)
    {
        if (transport.BufferedInput != 0)
            throw new InvalidDataException($"{peer}: {transport.BufferedInput} bytes arrived ahead of the switch to sealed records");
        if (serverShare.Length != SealedRecords.ShareBytes)
            throw new InvalidDataException($"{peer}: sealed records: the reply carries a key share of {serverShare.Length} bytes, not {SealedRecords.ShareBytes} (a server of an older version?)");
        var (up, down) = SealedRecords.Derive(clientShare, serverShare);
        return new SealedStream(new NetworkStream(socket, ownsSocket: false), client ? up : down, client ? down : up, peer, tlsSession);
    }

    public sealed class BatchedStream(Stream inner, int size) : Stream
    {
        private readonly byte[] readBuffer = new byte[size], writeBuffer = new byte[size];
        private int readPos, readLen, written;

        /// <summary>Collect writes until full or flushed (off: every write goes out at once).</summary>
        public bool Batching { get; set; }

        /// <summary>Bytes read from the socket and not yet consumed (must be none where the connection leaves TLS for sealed records).</summary>
        public int BufferedInput => readLen - readPos;

        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(Span<byte> into)
        {
            if (readPos == readLen)
            {
                if (into.Length >= readBuffer.Length) return inner.Read(into);     // large reads bypass the buffer
                readPos = 0;
                readLen = inner.Read(readBuffer);
                if (readLen == 0) return 0;
            }
            int n = Math.Min(into.Length, readLen - readPos);
            readBuffer.AsSpan(readPos, n).CopyTo(into);
            readPos += n;
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> into, CancellationToken ct = default)
        {
            if (readPos == readLen)
            {
                readPos = 0;
                readLen = await inner.ReadAsync(readBuffer, ct);
                if (readLen == 0) return 0;
            }
            int n = Math.Min(into.Length, readLen - readPos);
            readBuffer.AsMemory(readPos, n).CopyTo(into);
            readPos += n;
            return n;
        }

        public override void Write(ReadOnlySpan<byte> data)
        {
            if (!Batching) { FlushWrites(); inner.Write(data); return; }
            if (written + data.Length > writeBuffer.Length) FlushWrites();
            if (data.Length >= writeBuffer.Length) { inner.Write(data); return; }
            data.CopyTo(writeBuffer.AsSpan(written));
            written += data.Length;
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
        {
            // the handshake's path: few small writes, sent at once
            if (written > 0) FlushWrites();
            await inner.WriteAsync(data, ct);
        }

        private void FlushWrites()
        {
            if (written == 0) return;
            inner.Write(writeBuffer, 0, written);
            written = 0;
        }

        public override void Flush()
        {
            FlushWrites();
            inner.Flush();
        }

        public override Task FlushAsync(CancellationToken ct)
        {
            FlushWrites();
            return inner.FlushAsync(ct);
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }

    /// <summary>Reads a reply; a refusal becomes the <see cref="RpcException"/> a gRPC caller would have got.</summary>
    public static byte[] ReadReply(Stream s, string what)
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
    private readonly ClusterTls? tls;
    private readonly CancellationTokenSource stop = new();
    private readonly ConcurrentDictionary<Socket, byte> open = new();
    private int disposed;

    public TcpDataPlaneServer(IPAddress address, int port, PeerMailbox mailbox, ClusterToken token, ClusterTls? tls = null)
    {
        this.mailbox = mailbox;
        this.token = token;
        this.tls = tls;
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

    private void Serve(Socket socket)
    {
        string who = $"rank {mailbox.Membership.Rank}: TCP data plane connection from {socket.RemoteEndPoint}";
        Stream? s = null, session = null;
        try
        {
            var secured = Secure(socket, who);
            if (secured is null) return;
            session = secured.Value.Stream;
            s = Handshake(socket, session, secured.Value.Transport, who);
            if (s is null) return;
            while (!stop.IsCancellationRequested)
            {
                socket.ReceiveTimeout = 0;                                  // idle between tensors: no limit
                var frame = TcpFraming.ReadFrame(s, who);
                if (frame is null) return;                                  // the sender closed the connection
                socket.ReceiveTimeout = (int)Math.Min(int.MaxValue, mailbox.Deadline.TotalMilliseconds);
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
                    Refuse(socket, s, e.StatusCode, e.Status.Detail);
                    return;
                }
            }
        }
        catch (Exception) { /* the connection broke or the server stops: the mailbox already failed the key if one was open */ }
        finally
        {
            open.TryRemove(socket, out _);
            s?.Dispose();
            session?.Dispose();
            socket.Dispose();
        }
    }

    /// <summary>
    /// The connection's stream: the socket's own, or with TLS an <see cref="SslStream"/> once the client
    /// presented a certificate from the cluster CA (and the batched transport under it). A plaintext client (its first
    /// byte is no TLS handshake record) and a refused certificate are logged naming the address; null then, and the
    /// connection closes.
    /// </summary>
    private (Stream Stream, TcpFraming.BatchedStream? Transport)? Secure(Socket socket, string who)
    {
        socket.ReceiveTimeout = (int)HandshakeTimeout.TotalMilliseconds;
        socket.SendTimeout = (int)HandshakeTimeout.TotalMilliseconds;
        var plain = new NetworkStream(socket, ownsSocket: false);
        if (tls is null) return (plain, null);
        Span<byte> first = stackalloc byte[1];
        if (socket.Receive(first, SocketFlags.Peek) == 0) { plain.Dispose(); return null; }
        if (first[0] != ClusterTls.HandshakeRecord)
        {
            Console.Error.WriteLine($"{who}: TLS: refused a plaintext connection (the TCP data plane requires TLS with a client certificate from the cluster CA)");
            plain.Dispose();
            return null;
        }
        plain.Dispose();
        var transport = TcpFraming.ForTls(socket);
        var ssl = new SslStream(transport, leaveInnerStreamOpen: false);
        try
        {
            ssl.AuthenticateAsServer(tls.ServerOptions(why => Console.Error.WriteLine($"{who}: TLS: refused: {why}")));
            transport.Batching = true;
            return (ssl, transport);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            Console.Error.WriteLine($"{who}: TLS handshake failed: {e.Message}");
            ssl.Dispose();
            return null;
        }
    }

    /// <summary>
    /// The Jetpack hello, the token and (sealed records) the client's key share; answered with OK (and this side's share).
    /// The stream the connection goes on with, or null once refused.
    /// </summary>
    private Stream? Handshake(Socket socket, Stream s, TcpFraming.BatchedStream? transport, string who)
    {
        socket.ReceiveTimeout = (int)HandshakeTimeout.TotalMilliseconds;
        Span<byte> hello = stackalloc byte[5];
        if (!TcpFraming.ReceiveAll(s, hello)) return null;
        if (!hello[..4].SequenceEqual(TcpFraming.Magic) || hello[4] is not (TcpFraming.Version or TcpFraming.SealedVersion))
        {
            Refuse(socket, s, StatusCode.InvalidArgument, $"{who}: not a Jetpack TCP data plane client of version {TcpFraming.Version} or {TcpFraming.SealedVersion}");
            return null;
        }
        bool sealedRecords = hello[4] == TcpFraming.SealedVersion;
        if (sealedRecords && transport is null)
        {
            Refuse(socket, s, StatusCode.InvalidArgument, $"{who}: sealed records need TLS, and this data plane serves plaintext (no --tls-cert)");
            return null;
        }
        var frame = TcpFraming.ReadFrame(s, who);
        if (frame is not { Kind: TcpFraming.TokenFrame } f || !token.Matches(Encoding.ASCII.GetString(f.Payload)))
        {
            Refuse(socket, s, StatusCode.Unauthenticated, $"rank {mailbox.Membership.Rank}: the TCP data plane needs the cluster token (missing or wrong)");
            return null;
        }
        if (!sealedRecords)
        {
            TcpFraming.WriteReply(s, StatusCode.OK, []);
            return s;
        }
        var share = TcpFraming.ReadFrame(s, who);
        if (share is not { Kind: TcpFraming.KeyShareFrame } k || k.Payload.Length != SealedRecords.ShareBytes)
        {
            Refuse(socket, s, StatusCode.InvalidArgument, $"{who}: sealed records: a key share of {SealedRecords.ShareBytes} bytes was due after the token");
            return null;
        }
        byte[] mine = SealedRecords.NewShare();
        TcpFraming.WriteReply(s, StatusCode.OK, mine);
        return TcpFraming.Seal(socket, s, transport!, k.Payload, mine, client: false, who);
    }

    /// <summary>Receives the rest of the tensor's bytes straight into its storage (through TLS: decrypted into it).</summary>
    private static void Receive(Stream s, TensorAssembler asm, string what)
    {
        while (true)
        {
            var into = asm.Remaining;
            if (into.Length == 0) return;
            int n = TcpFraming.Read(s, into);
            if (n == 0) throw new EndOfStreamException($"{what}: the sender closed the connection after {asm.Received} bytes");
            asm.Advance(n);
        }
    }

    /// <summary>Answers with the refusal, then reads and drops what the sender still sends until it closes (bounded in time).</summary>
    private static void Refuse(Socket socket, Stream s, StatusCode code, string detail)
    {
        try
        {
            TcpFraming.WriteReply(s, code, Encoding.UTF8.GetBytes(detail));
            s.Flush();
            socket.Shutdown(SocketShutdown.Send);
            socket.ReceiveTimeout = (int)DrainTimeout.TotalMilliseconds;
            var sink = new byte[64 << 10];
            var until = DateTime.UtcNow + DrainTimeout;
            while (DateTime.UtcNow < until && socket.Receive(sink) > 0) { }
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
/// straight to the socket (with TLS: encrypted from it), then waits for the receiver's answer; the
/// deadline bounds every blocking call and cancelling closes the socket.
/// </summary>
public sealed class TcpPeerLink(int peer, string host, Func<CancellationToken, Task<int>> discoverPort, ClusterToken token, ClusterTls? tls = null) : IDisposable
{
    /// <summary>One connection: the socket (timeouts, cancellation) and the stream the frames go through (the socket's, or TLS over it).</summary>
    private sealed record Connection(Socket Socket, Stream Stream) : IDisposable
    {
        public void Dispose()
        {
            Stream.Dispose();
            Socket.Dispose();
        }
    }

    private readonly ConcurrentBag<Connection> idle = [];
    private readonly SemaphoreSlim portGate = new(1, 1);
    private int port;
    private bool disposed;

    public async Task PushAsync(MailKey key, Tensor readable, DateTime deadline, CancellationToken ct)
    {
        var header = key.ToHeader();
        header.Tensor = TensorCodec.Header("tensor", readable);
        string what = $"{key} to rank {peer}";
        var c = idle.TryTake(out var pooled) ? pooled : await ConnectAsync(deadline, ct);
        bool reusable = false;
        try
        {
            await Task.Run(() =>
            {
                using var _ = ct.Register(() => c.Socket.Dispose());        // a cancelled push ends its blocking calls at once
                int ms = (int)Math.Clamp((deadline - DateTime.UtcNow).TotalMilliseconds, 1, int.MaxValue);
                c.Socket.SendTimeout = ms;
                c.Socket.ReceiveTimeout = ms;
                TcpFraming.WriteFrame(c.Stream, TcpFraming.HeaderFrame, header.ToByteArray());
                if (readable.numel() > 0) TcpFraming.SendAll(c.Stream, readable.bytes);   // from the tensor's storage, no copy
                c.Stream.Flush();                                           // (TLS: the last batch of records)
                TcpFraming.ReadReply(c.Stream, what);
            }, CancellationToken.None);
            reusable = true;
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            throw new OperationCanceledException(ct);
        }
        finally
        {
            if (reusable && !disposed) idle.Add(c);
            else c.Dispose();
        }
    }

    private async Task<Connection> ConnectAsync(DateTime deadline, CancellationToken ct)
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
        Stream? stream = null;
        string with = $"rank {peer} at {host}:{port}";
        try
        {
            await s.ConnectAsync(host, port, limit.Token);
            s.ReceiveTimeout = 10_000;
            s.SendTimeout = 10_000;
            stream = new NetworkStream(s, ownsSocket: false);
            TcpFraming.BatchedStream? transport = null;
            if (tls is not null)
            {
                stream.Dispose();
                transport = TcpFraming.ForTls(s);
                var ssl = new SslStream(transport, leaveInnerStreamOpen: false);
                stream = ssl;
                try
                {
                    await ssl.AuthenticateAsClientAsync(tls.ClientOptions(host), limit.Token);
                    transport.Batching = true;
                }
                catch (Exception e) when (e is AuthenticationException or IOException)
                {
                    throw new AuthenticationException($"TLS: the TCP data plane handshake with {with} failed ({e.Message}): both ranks need certificates from the same cluster CA", e);
                }
            }
            var framed = stream;
            bool sealedRecords = tls is { SealedTcpRecords: true };
            stream = await Task.Run(() =>
            {
                Span<byte> hello = stackalloc byte[5];
                TcpFraming.Magic.CopyTo(hello);
                hello[4] = sealedRecords ? TcpFraming.SealedVersion : TcpFraming.Version;
                TcpFraming.SendAll(framed, hello);
                TcpFraming.WriteFrame(framed, TcpFraming.TokenFrame, Encoding.ASCII.GetBytes(token.Value));
                byte[] mine = sealedRecords ? SealedRecords.NewShare() : [];
                if (sealedRecords) TcpFraming.WriteFrame(framed, TcpFraming.KeyShareFrame, mine);
                framed.Flush();
                var reply = TcpFraming.ReadReply(framed, $"TCP data plane handshake with {with}");
                return sealedRecords ? TcpFraming.Seal(s, framed, transport!, mine, reply, client: true, with) : framed;
            }, CancellationToken.None);
            return new Connection(s, stream);
        }
        catch
        {
            stream?.Dispose();
            s.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        disposed = true;
        while (idle.TryTake(out var c)) c.Dispose();
        portGate.Dispose();
    }
}
