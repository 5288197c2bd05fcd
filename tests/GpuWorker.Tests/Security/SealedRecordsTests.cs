using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Jetpack.GpuWorker.DataPlane;

namespace Jetpack.GpuWorker.Tests.Security;

/// <summary>
/// Issue 20, TCP+TLS throughput: the TCP data plane's sealed records (AES-256-GCM keyed inside the TLS session).
/// Every length and read size arrives intact over a real socket; an altered, replayed, reordered, oversized or
/// wrongly keyed record is refused with a named error, the oversized one before its body is read.
/// </summary>
public sealed class SealedRecordsTests
{
    static byte[] Pattern(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Fact]
    public async Task EveryWriteSizeAndReadSizeArrivesIntactBothWays()
    {
        var shares = (SealedRecords.NewShare(), SealedRecords.NewShare());
        var (a, b) = Pair(shares);
        using var client = a;
        using var server = b;
        int[] sizes = [5, 1, 300 << 10, (3 << 20) / 2, 3, SealedRecords.RecordBytes, 64 << 10, 7];
        var sent = sizes.Select((n, i) => Pattern(n, i)).ToArray();
        var writer = Task.Run(() =>
        {
            foreach (var part in sent) client.Write(part);
            client.Flush();
        });
        // reads of every shape: a byte, odd sizes, larger than a record (in place), exactly the rest
        var expected = sent.SelectMany(x => x).ToArray();
        var got = new byte[expected.Length];
        int at = 0, turn = 0;
        int[] reads = [1, 4, 1000, 2 << 20, 17, 512 << 10];
        while (at < got.Length)
        {
            int want = Math.Min(reads[turn++ % reads.Length], got.Length - at);
            int n = server.Read(got.AsSpan(at, want));
            Assert.True(n > 0, $"the stream ended after {at} of {got.Length} bytes");
            at += n;
        }
        await writer;
        Assert.True(got.AsSpan().SequenceEqual(expected), "the bytes read differ from the bytes written");

        var back = Pattern(2 << 20, 99);                                            // the other direction, its own key
        var reply = Task.Run(() => { server.Write(back); server.Flush(); });
        var echo = new byte[back.Length];
        client.ReadExactly(echo);
        await reply;
        Assert.True(echo.AsSpan().SequenceEqual(back), "the reply differs");
    }

    /// <summary>A connected pair: the client's stream and the server's, keyed from the same two shares.</summary>
    static (SealedStream Client, SealedStream Server) Pair((byte[] Client, byte[] Server) shares)
    {
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var a = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 20_000, SendTimeout = 20_000 };
        a.Connect(listener.LocalEndPoint!);
        var b = listener.Accept();
        b.ReceiveTimeout = 20_000;
        var (up, down) = SealedRecords.Derive(shares.Client, shares.Server);
        var (up2, down2) = SealedRecords.Derive(shares.Client, shares.Server);
        return (new SealedStream(new NetworkStream(a, ownsSocket: true), up, down, "the server", a),
                new SealedStream(new NetworkStream(b, ownsSocket: true), down2, up2, "the client", b));
    }

    /// <summary>What the client's stream puts on the wire for <paramref name="parts"/> (each part flushed as its own record).</summary>
    static byte[] Wire((byte[] Client, byte[] Server) shares, params byte[][] parts) => Wire(shares, SealedRecords.RekeyRecords, parts);

    static byte[] Wire((byte[] Client, byte[] Server) shares, ulong rekeyRecords, params byte[][] parts)
    {
        var wire = new MemoryStream();
        var (up, down) = SealedRecords.Derive(shares.Client, shares.Server, rekeyRecords);
        using var writer = new SealedStream(new NonClosing(wire), up, down, "test", new MemoryStream());
        foreach (var p in parts)
        {
            writer.Write(p);
            writer.Flush();
        }
        return wire.ToArray();
    }

    /// <summary>Reads everything the server's stream opens from <paramref name="wire"/>.</summary>
    static byte[] Open((byte[] Client, byte[] Server) shares, byte[] wire, ulong rekeyRecords = SealedRecords.RekeyRecords)
    {
        var (up, down) = SealedRecords.Derive(shares.Client, shares.Server, rekeyRecords);
        using var reader = new SealedStream(new MemoryStream(wire), down, up, "the sender", new MemoryStream());
        var into = new MemoryStream();
        reader.CopyTo(into);
        return into.ToArray();
    }

    sealed class NonClosing(Stream inner) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    }

    const int Record = SealedRecords.LengthBytes + SealedRecords.TagBytes;             // framing bytes per record

    [Fact]
    public void AnUntouchedWireOpensToThePlaintext()
    {
        var shares = (SealedRecords.NewShare(), SealedRecords.NewShare());
        byte[] one = Pattern(1000, 1), two = Pattern(2000, 2);
        Assert.Equal(one.Concat(two).ToArray(), Open(shares, Wire(shares, one, two)));
    }

    [Fact]
    public void AnAlteredByteFailsTheRecordsTag()
    {
        var shares = (SealedRecords.NewShare(), SealedRecords.NewShare());
        var wire = Wire(shares, Pattern(1000, 1));
        wire[SealedRecords.LengthBytes + 500] ^= 0x01;
        var e = Assert.Throws<InvalidDataException>(() => Open(shares, wire));
        Assert.Equal("the sender: sealed record 0 failed authentication (altered, replayed or reordered on the way)", e.Message);
    }

    [Fact]
    public void AReplayedOrReorderedRecordFailsItsTag()
    {
        var shares = (SealedRecords.NewShare(), SealedRecords.NewShare());
        var wire = Wire(shares, Pattern(100, 1), Pattern(100, 2));
        int first = 100 + Record;
        var replayed = wire.Concat(wire[..first]).ToArray();                          // record 0 again as record 2
        Assert.Contains("sealed record 2 failed authentication", Assert.Throws<InvalidDataException>(() => Open(shares, replayed)).Message);
        var reordered = wire[first..].Concat(wire[..first]).ToArray();                // record 1 first
        Assert.Contains("sealed record 0 failed authentication", Assert.Throws<InvalidDataException>(() => Open(shares, reordered)).Message);
    }

    [Fact]
    public void ADifferentKeyShareFailsTheFirstRecord()
    {
        var shares = (SealedRecords.NewShare(), SealedRecords.NewShare());
        var wire = Wire(shares, Pattern(100, 1));
        var other = (shares.Item1, SealedRecords.NewShare());
        Assert.Contains("sealed record 0 failed authentication", Assert.Throws<InvalidDataException>(() => Open(other, wire)).Message);
        // nor does the other direction's key open it (a reflected record)
        var (up, down) = SealedRecords.Derive(shares.Item1, shares.Item2);
        using var reflected = new SealedStream(new MemoryStream(wire), down, down, "the sender", new MemoryStream());
        Assert.Throws<InvalidDataException>(() => reflected.ReadByte());
        up.Dispose();
    }

    [Fact]
    public void AnOversizedOrEmptyLengthIsRefusedBeforeItsBodyIsRead()
    {
        var shares = (SealedRecords.NewShare(), SealedRecords.NewShare());
        foreach (int n in new[] { SealedRecords.RecordBytes + 1, int.MaxValue, 0, -5 })
        {
            var wire = new byte[4];                                                    // a length and no body: reading one would hit the end
            BinaryPrimitives.WriteInt32LittleEndian(wire, n);
            var e = Assert.Throws<InvalidDataException>(() => Open(shares, wire));
            Assert.Equal($"the sender: a sealed record of {n} bytes (1 to {SealedRecords.RecordBytes} allowed): the stream is corrupt or not sealed", e.Message);
        }
        var cut = Wire(shares, Pattern(100, 1))[..50];
        Assert.Equal("the sender: the connection closed inside a sealed record", Assert.Throws<EndOfStreamException>(() => Open(shares, cut)).Message);
    }

    [Fact]
    public void BothEndsStepToTheNextKeyAfterTheSameRecordCount()
    {
        var shares = (SealedRecords.NewShare(), SealedRecords.NewShare());
        var parts = Enumerable.Range(0, 7).Select(i => Pattern(100, i)).ToArray();
        var wire = Wire(shares, 3, parts);                                           // keys change before records 3 and 6
        Assert.Equal(parts.SelectMany(p => p).ToArray(), Open(shares, wire, rekeyRecords: 3));
        // a receiver that kept the first key opens records 0–2 and fails at the first record under the next key
        Assert.Contains("sealed record 3 failed authentication", Assert.Throws<InvalidDataException>(() => Open(shares, wire)).Message);
    }

    [Fact]
    public void KeySharesOfTheWrongSizeAreRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => SealedRecords.Derive(new byte[16], new byte[32]));
        Assert.Equal("sealed records: key shares must be 32 bytes (got 16 and 32)", e.Message);
    }
}
