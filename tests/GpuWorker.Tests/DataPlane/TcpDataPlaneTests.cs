using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Jetpack.GpuWorker.DataPlane;
using Jetpack.Model.Distributed;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;
using ExchangePhase = Jetpack.Model.Distributed.ExchangePhase;
using Jetpack.Protocol.Channels;

namespace Jetpack.GpuWorker.Tests.DataPlane;

/// <summary>
/// The raw TCP data plane byte by byte, written here from its documented framing (not with the
/// product's own writer): a good tensor is acknowledged and the connection carries the next one;
/// every bad connection or message gets the status a gRPC caller would get, with the reason.
/// </summary>
public class TcpDataPlaneTests
{
    static readonly ExchangeTag Tag = new(5, 0, 3, ExchangePhase.Dispatch);

    static Socket Open(LoopbackCluster c, int rank)
    {
        Assert.True(c.Nodes[rank].DataPort > 0);
        var s = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 20_000, SendTimeout = 20_000 };
        s.Connect(IPAddress.Loopback, c.Nodes[rank].DataPort);
        return s;
    }

    static void Frame(Socket s, byte kind, byte[] payload)
    {
        var head = new byte[5];
        head[0] = kind;
        BinaryPrimitives.WriteInt32LittleEndian(head.AsSpan(1), payload.Length);
        s.Send(head);
        s.Send(payload);
    }

    static void Hello(Socket s, string token)
    {
        s.Send("JPKD\u0001"u8.ToArray());
        Frame(s, 0x10, Encoding.ASCII.GetBytes(token));
    }

    static (StatusCode Code, byte[] Payload) Reply(Socket s)
    {
        var head = ReadExactly(s, 5);
        return ((StatusCode)head[0], ReadExactly(s, BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(1))));
    }

    static byte[] ReadExactly(Socket s, int n)
    {
        var b = new byte[n];
        for (int got = 0; got < n;)
        {
            int k = s.Receive(b, got, n - got, SocketFlags.None);
            if (k == 0) throw new EndOfStreamException($"closed after {got} of {n} bytes");
            got += k;
        }
        return b;
    }

    static DataHeader Header(string job, int source, long[] shape, ExchangeTag tag)
    {
        var h = MailKey.Exchange(job, tag, source).ToHeader();
        h.Tensor = new TensorHeader { Name = "slots", Dtype = DType.Float32, ByteLength = shape.Aggregate(1L, (a, b) => a * b) * 4 };
        h.Tensor.Shape.Add(shape);
        return h;
    }

    static void Send(Socket s, DataHeader h, float[] values)
    {
        Frame(s, 0x11, h.ToByteArray());
        s.Send(values.SelectMany(BitConverter.GetBytes).ToArray());
    }

    [Fact]
    public async Task ATensorIsAcknowledgedAndTheConnectionCarriesTheNextOne()
    {
        await using var c = await LoopbackCluster.StartAsync(2);
        using var s = Open(c, 1);
        Hello(s, c.Token.Value);
        Assert.Equal(StatusCode.OK, Reply(s).Code);
        for (int step = 0; step < 2; step++)
        {
            var tag = Tag with { Step = 10 + step };
            var receiving = c.Nodes[1].Mailbox.Expect(MailKey.Exchange(LoopbackCluster.Job, tag, 0), new Expectation(ScalarType.Float32, [2, 3]));
            float[] values = [1, 2, 3, 4, 5, step];
            Send(s, Header(LoopbackCluster.Job, 0, [2, 3], tag), values);
            var (code, payload) = Reply(s);
            Assert.Equal(StatusCode.OK, code);
            Assert.Equal(24, DataAck.Parser.ParseFrom(payload).BytesReceived);
            using var got = await receiving;
            Assert.Equal(values, got.data<float>().ToArray());
            c.Nodes[1].Mailbox.Forget(MailKey.Exchange(LoopbackCluster.Job, tag, 0));
        }
    }

    [Fact]
    public async Task AWrongShapeIsRefusedAndTheReceiverFailsNamingSourceAndPhase()
    {
        await using var c = await LoopbackCluster.StartAsync(2);
        var receiving = c.Nodes[1].Mailbox.Expect(MailKey.Exchange(LoopbackCluster.Job, Tag, 0), new Expectation(ScalarType.Float32, [2, 3]));
        using var s = Open(c, 1);
        Hello(s, c.Token.Value);
        Assert.Equal(StatusCode.OK, Reply(s).Code);
        Send(s, Header(LoopbackCluster.Job, 0, [2, 4], Tag), new float[8]);
        var (code, text) = Reply(s);
        Assert.Equal(StatusCode.InvalidArgument, code);
        Assert.Contains("shape [2, 4], expected [2, 3]", Encoding.UTF8.GetString(text));
        var failed = await Assert.ThrowsAsync<ExchangeFailedException>(() => receiving);
        Assert.Contains("rank 1", failed.Message);
        Assert.Contains("from rank 0", failed.Message);
        Assert.Contains("Dispatch", failed.Message);
        Assert.Equal(0, s.Receive(new byte[1]));                           // then the receiver closes the connection
    }

    [Theory]
    [InlineData("other-job", 0, StatusCode.PermissionDenied, "job 'other-job'")]
    [InlineData(LoopbackCluster.Job, 1, StatusCode.PermissionDenied, "from rank 1")]       // the receiver's own rank
    [InlineData(LoopbackCluster.Job, 0, StatusCode.InvalidArgument, "exceeds the limit")]  // 1 GiB announced
    public async Task MessagesFromOutsideTheJobAndOversizeOnesAreRefusedBeforeAnyData(string job, int source, StatusCode expected, string says)
    {
        await using var c = await LoopbackCluster.StartAsync(2);
        using var s = Open(c, 1);
        Hello(s, c.Token.Value);
        Assert.Equal(StatusCode.OK, Reply(s).Code);
        long[] shape = expected == StatusCode.InvalidArgument ? [1L << 28] : [2];
        Frame(s, 0x11, Header(job, source, shape, Tag).ToByteArray());  // the header alone: the answer comes before any data
        var (code, text) = Reply(s);
        Assert.Equal(expected, code);
        Assert.Contains(says, Encoding.UTF8.GetString(text));
    }

    [Fact]
    public async Task AConnectionWithoutTheTokenOrTheMagicIsRefused()
    {
        await using var c = await LoopbackCluster.StartAsync(2);
        using (var s = Open(c, 1))
        {
            Hello(s, ClusterToken.Generate().Value);
            var (code, text) = Reply(s);
            Assert.Equal(StatusCode.Unauthenticated, code);
            Assert.Contains("cluster token", Encoding.UTF8.GetString(text));
        }
        using (var s = Open(c, 1))
        {
            s.Send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());            // an HTTP/2 client at the wrong port
            var (code, text) = Reply(s);
            Assert.Equal(StatusCode.InvalidArgument, code);
            Assert.Contains("not a Jetpack TCP data plane client", Encoding.UTF8.GetString(text));
        }
        // the port is only told to callers with the token, through Health
        var channel = WireChannels.Open(c.Nodes[1].Address, WireLimits.Default);
        var health = await new WorkerControl.WorkerControlClient(channel.Intercept(new ClusterTokenCallInterceptor(c.Token))).HealthAsync(new HealthRequest());
        Assert.Equal(c.Nodes[1].DataPort, health.DataPort);
    }

    [Fact]
    public async Task TheProductsSenderReportsARefusalWithItsStatusAndText()
    {
        await using var c = await LoopbackCluster.StartAsync(2, transport: DataPlaneTransport.Tcp);
        var receiving = c.Nodes[1].Mailbox.Expect(MailKey.Exchange(LoopbackCluster.Job, Tag, 0), new Expectation(ScalarType.BFloat16, [4]));
        using var channels = new PeerChannels(c.Nodes.Select(n => n.Address).ToList(), 0, c.Token, WireLimits.Default, DataPlaneTransport.Tcp);
        using var piece = ones(4, ScalarType.Float32);
        var e = await Assert.ThrowsAsync<RpcException>(() =>
            channels.PushAsync(1, MailKey.Exchange(LoopbackCluster.Job, Tag, 0), piece, new byte[1024], DateTime.UtcNow.AddSeconds(20), CancellationToken.None));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("dtype Float32, expected Bfloat16", e.Status.Detail);
        await Assert.ThrowsAsync<ExchangeFailedException>(() => receiving);
    }
}
