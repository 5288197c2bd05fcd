using Jetpack.GpuWorker.DataPlane;
using Jetpack.Model.Distributed;
using static TorchSharp.torch;
using Jetpack.Protocol.Channels;

namespace Jetpack.GpuWorker.Tests.DataPlane;

public class GrpcRingReducerTests
{
    static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    static readonly long[][] Shapes = [[1], [7, 3], [1000], [2, 2, 2], [5]];

    static List<Tensor> Grads(int rank) =>
        Shapes.Select((s, i) => randn(s, generator: new Generator((ulong)(1000 * rank + i + 1)))).ToList();

    [Theory]
    [InlineData(2, 4L << 20, DataPlaneTransport.Grpc)]     // one bucket
    [InlineData(3, 4L << 20, DataPlaneTransport.Grpc)]     // 3 does not divide 1034: uneven chunks
    [InlineData(3, 8L, DataPlaneTransport.Grpc)]           // tiny buckets: one tensor per bucket, chunks of 1 element and empty ones
    [InlineData(4, 100L, DataPlaneTransport.Grpc)]
    [InlineData(3, 8L, DataPlaneTransport.Tcp)]
    [InlineData(4, 100L, DataPlaneTransport.Tcp)]
    [InlineData(3, 8L, DataPlaneTransport.GrpcPull)]
    [InlineData(4, 100L, DataPlaneTransport.GrpcPull)]
    public async Task EveryRankEndsWithTheSameSumOfAllRanks(int world, long bucketElements, DataPlaneTransport transport)
    {
        await using var cluster = await LoopbackCluster.StartAsync(world, bucketElements: bucketElements, transport: transport);
        var results = LoopbackCluster.PerRank(world, r =>
        {
            var g = Grads(r);
            cluster.Nodes[r].Reducer.AllReduceSum(step: 4, g);
            cluster.Nodes[r].Reducer.AllReduceSum(step: 4, g);          // again in the same step (as checkpoint barriers do): calls are numbered
            return g;
        }, Wait);
        for (int i = 0; i < Shapes.Length; i++)
        {
            using var sum = Enumerable.Range(0, world).Select(r => Grads(r)[i]).Aggregate((a, b) => a + b) * world;   // [shape]
            for (int r = 0; r < world; r++)
            {
                Assert.Equal(Shapes[i], results[r][i].shape);
                Assert.True(results[r][i].allclose(sum, rtol: 1e-5, atol: 1e-5), $"rank {r} tensor {i}: not the sum");
                Assert.True(results[r][i].eq(results[0][i]).all().item<bool>(), $"rank {r} tensor {i}: differs bitwise from rank 0");
            }
        }
        Assert.All(cluster.Nodes, n => Assert.Equal(0, n.Mailbox.Pending));
    }

    [Fact]
    public async Task AKilledPeerFailsTheRingWithinTheDeadlineNamingRankAndPhase()
    {
        var deadline = TimeSpan.FromSeconds(3);
        await using var cluster = await LoopbackCluster.StartAsync(3, deadline);
        await cluster.Nodes[1].StopAsync();
        var errors = LoopbackCluster.PerRank(3, r => r == 1 ? null : Assert.Throws<ExchangeFailedException>(() => cluster.Nodes[r].Reducer.AllReduceSum(11, Grads(r))),
                                             deadline * 3);
        // rank 0 sends to rank 1 (refused at once); rank 2 waits for rank 1's chunk until the deadline
        Assert.Contains("rank 0: step 11 all-reduce ReduceScatter", errors[0]!.Message);
        Assert.Contains("send to rank 1", errors[0]!.Message);
        Assert.Contains("rank 2: step 11 all-reduce", errors[2]!.Message);
        Assert.Contains("rank 1", errors[2]!.Message);
    }
}
