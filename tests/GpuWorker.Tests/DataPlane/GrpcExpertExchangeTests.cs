using System.Diagnostics;
using Jetpack.GpuWorker.DataPlane;
using Jetpack.Model.Distributed;
using static TorchSharp.torch;
using Jetpack.Protocol.Channels;

namespace Jetpack.GpuWorker.Tests.DataPlane;

public class GrpcExpertExchangeTests
{
    static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    /// <summary>Piece from rank v to rank w: shape [v+1, w+2, 3] (uneven on purpose), values encoding (v, w).</summary>
    static long[] Shape(int v, int w) => [v + 1, w + 2, 3];
    static Tensor Piece(int v, int w, ScalarType dtype) =>
        arange(Shape(v, w).Aggregate(1L, (a, b) => a * b), ScalarType.Float32).reshape(Shape(v, w)).add(100 * v + 10 * w).to(dtype);

    [Theory]
    [InlineData(2, ScalarType.Float32, DataPlaneTransport.Grpc)]
    [InlineData(3, ScalarType.Float32, DataPlaneTransport.Grpc)]
    [InlineData(3, ScalarType.BFloat16, DataPlaneTransport.Grpc)]
    [InlineData(2, ScalarType.Float32, DataPlaneTransport.Tcp)]
    [InlineData(3, ScalarType.BFloat16, DataPlaneTransport.Tcp)]
    [InlineData(2, ScalarType.Float32, DataPlaneTransport.GrpcPull)]
    [InlineData(3, ScalarType.BFloat16, DataPlaneTransport.GrpcPull)]
    public async Task EveryRankReceivesEachSourcesPieceIndexedBySource(int world, ScalarType dtype, DataPlaneTransport transport)
    {
        await using var cluster = await LoopbackCluster.StartAsync(world, transport: transport);
        // two exchanges of different layers in flight in sequence; the tag keeps them apart
        var ok = LoopbackCluster.PerRank(world, w =>
        {
            var ex = cluster.Nodes[w].Exchange;
            for (int layer = 0; layer < 2; layer++)
            {
                var send = Enumerable.Range(0, world).Select(v => Piece(w, v, dtype)).ToList();
                var expected = Enumerable.Range(0, world).Select(v => Shape(v, w)).ToList();
                var got = ex.AllToAll(new ExchangeTag(7, 0, layer, ExchangePhase.Dispatch), send, expected);
                Assert.Same(send[w], got[w]);                                // own piece passed through
                for (int v = 0; v < world; v++)
                {
                    Assert.Equal(dtype, got[v].dtype);
                    Assert.Equal(Shape(v, w), got[v].shape);
                    using var want = Piece(v, w, dtype);
                    Assert.True(got[v].eq(want).all().item<bool>(), $"rank {w} layer {layer}: piece from rank {v} differs");
                }
            }
            return true;
        }, Wait);
        Assert.All(ok, Assert.True);
        Assert.All(cluster.Nodes, n => Assert.Equal(0, n.Mailbox.Pending));
    }

    [Theory]
    [InlineData(DataPlaneTransport.Grpc)]
    [InlineData(DataPlaneTransport.Tcp)]
    [InlineData(DataPlaneTransport.GrpcPull)]
    public async Task PiecesLargerThanOneChunkArriveWhole(DataPlaneTransport transport)
    {
        await using var cluster = await LoopbackCluster.StartAsync(2, transport: transport);
        long n = 3 * (1 << 20) / 4 + 5;                                   // 3 MiB + 20 bytes: many chunks, the last one short
        LoopbackCluster.PerRank(2, w =>
        {
            var send = new[] { arange(n, ScalarType.Float32).add(w), arange(n, ScalarType.Float32).add(10 * w) };
            var got = cluster.Nodes[w].Exchange.AllToAll(new ExchangeTag(1, 0, 0, ExchangePhase.Return), send, [[n], [n]]);
            using var want = arange(n, ScalarType.Float32).add(w == 0 ? 1 : 0);
            Assert.True(got[1 - w].eq(want).all().item<bool>());
            return 0;
        }, Wait);
    }

    [Theory]
    [InlineData(DataPlaneTransport.Grpc)]
    [InlineData(DataPlaneTransport.Tcp)]
    [InlineData(DataPlaneTransport.GrpcPull)]
    public async Task AKilledPeerFailsTheOthersWithinTheDeadlineNamingRankAndPhase(DataPlaneTransport transport)
    {
        var deadline = TimeSpan.FromSeconds(4);
        await using var cluster = await LoopbackCluster.StartAsync(3, deadline, transport: transport);
        await cluster.Nodes[2].StopAsync();                              // rank 2 is gone: its port refuses connections
        var clock = Stopwatch.StartNew();
        var errors = LoopbackCluster.PerRank(2, w =>
        {
            var send = Enumerable.Range(0, 3).Select(v => Piece(w, v, ScalarType.Float32)).ToList();
            var expected = Enumerable.Range(0, 3).Select(v => Shape(v, w)).ToList();
            return Assert.Throws<ExchangeFailedException>(() => cluster.Nodes[w].Exchange.AllToAll(new ExchangeTag(3, 0, 5, ExchangePhase.GradDispatch), send, expected));
        }, Wait);
        Assert.True(clock.Elapsed < deadline + TimeSpan.FromSeconds(3), $"took {clock.Elapsed.TotalSeconds:F1} s for a deadline of {deadline.TotalSeconds} s");
        foreach (var (e, w) in errors.Select((e, w) => (e, w)))
        {
            Assert.Contains($"rank {w}", e.Message);
            Assert.Contains("rank 2", e.Message);
            Assert.Contains("GradDispatch", e.Message);
        }
        // Nothing stays behind. A piece that rank 1 sent before it failed may land after rank 0 gave up: it finds no
        // expectation and waits out the deadline, then its slot goes (PeerMailbox.Deliver). So poll, bounded.
        var drained = Stopwatch.StartNew();
        while ((cluster.Nodes[0].Mailbox.Pending > 0 || cluster.Nodes[0].Mailbox.Outbox.Pending > 0) && drained.Elapsed < deadline + TimeSpan.FromSeconds(3)) await Task.Delay(50);
        Assert.Equal(0, cluster.Nodes[0].Mailbox.Pending);
        Assert.Equal(0, cluster.Nodes[0].Mailbox.Outbox.Pending);                // grpc-pull: offers nobody pulled are withdrawn
    }

    [Theory]
    [InlineData(DataPlaneTransport.Grpc)]
    [InlineData(DataPlaneTransport.Tcp)]
    [InlineData(DataPlaneTransport.GrpcPull)]
    public async Task AMissingPieceFailsAtTheDeadlineNamingTheSilentRank(DataPlaneTransport transport)
    {
        var deadline = TimeSpan.FromSeconds(2);
        await using var cluster = await LoopbackCluster.StartAsync(2, deadline, transport: transport);
        var clock = Stopwatch.StartNew();
        // rank 1 never calls: rank 0's send is held (nobody expects it) and its receive waits
        var e = Assert.Throws<ExchangeFailedException>(() => cluster.Nodes[0].Exchange.AllToAll(
            new ExchangeTag(9, 1, 2, ExchangePhase.Dispatch), [Piece(0, 0, ScalarType.Float32), Piece(0, 1, ScalarType.Float32)], [Shape(0, 0), Shape(1, 0)]));
        Assert.InRange(clock.Elapsed.TotalSeconds, deadline.TotalSeconds * 0.9, deadline.TotalSeconds + 3);
        Assert.Contains("rank 0", e.Message);
        Assert.Contains("rank 1", e.Message);
        Assert.Contains("step 9 micro 1 layer 2 Dispatch", e.Message);
    }
}
