using System.Diagnostics;
using Jetpack.GpuWorker.DataPlane;
using Jetpack.Model.Distributed;
using Jetpack.Protocol.Channels;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.Tests.DataPlane;

/// <summary>
/// Workers started by hand with different <c>--data-plane</c> values: a grpc-pull rank waits for offers a pushing rank
/// never makes (and the reverse), so without a check both sides waited out the step's deadline. Each rank learns its
/// peers' planes from their Health and fails the step at once, naming both ranks, the peer's address and both planes.
/// The deadline is the production one (60 s); detection must come well inside it.
/// </summary>
public class MixedDataPlaneTests(ITestOutputHelper output)
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    static readonly TimeSpan WellBefore = TimeSpan.FromSeconds(10);

    static string Mixed(LoopbackCluster c, int rank, DataPlaneTransport own, int peer, DataPlaneTransport theirs) =>
        $"rank {rank} uses the {own.Name()} data plane but rank {peer} ({c.Nodes[peer].Address}) uses {theirs.Name()}: start every worker with the same --data-plane";

    [Theory]
    [InlineData(DataPlaneTransport.GrpcPull, DataPlaneTransport.Tcp)]
    [InlineData(DataPlaneTransport.Tcp, DataPlaneTransport.GrpcPull)]
    [InlineData(DataPlaneTransport.GrpcPull, DataPlaneTransport.Grpc)]
    [InlineData(DataPlaneTransport.Grpc, DataPlaneTransport.GrpcPull)]
    public async Task AnExchangeBetweenTwoPlanesFailsAtOnceOnBothRanksNamingThem(DataPlaneTransport plane0, DataPlaneTransport plane1)
    {
        DataPlaneTransport[] planes = [plane0, plane1];
        await using var cluster = await LoopbackCluster.StartAsync(2, Deadline, transportOf: r => planes[r]);
        var errors = LoopbackCluster.PerRank(2, w =>
        {
            var clock = Stopwatch.StartNew();
            var send = new[] { ones([4, 3]), ones([4, 3]) };
            var e = Assert.Throws<ExchangeFailedException>(() =>
                cluster.Nodes[w].Exchange.AllToAll(new ExchangeTag(3, 0, 1, ExchangePhase.Dispatch), send, [[4, 3], [4, 3]]));
            return (e.Message, clock.Elapsed);
        }, Deadline * 2);
        for (int r = 0; r < 2; r++)
        {
            output.WriteLine($"{plane0.Name()}/{plane1.Name()}: rank {r} failed after {errors[r].Elapsed.TotalMilliseconds:F0} ms (deadline {Deadline.TotalSeconds:F0} s, load {Load()}): {errors[r].Message}");
            Assert.Contains(Mixed(cluster, r, planes[r], 1 - r, planes[1 - r]), errors[r].Message);
            Assert.Contains("step 3", errors[r].Message);
            Assert.True(errors[r].Elapsed < WellBefore, $"rank {r} learnt of the mixed planes only after {errors[r].Elapsed.TotalSeconds:F1} s");
        }
    }

    [Fact]
    public async Task ARingWithOneRankOnAnotherPlaneFailsAtOnceNamingThatRank()
    {
        DataPlaneTransport[] planes = [DataPlaneTransport.Tcp, DataPlaneTransport.Tcp, DataPlaneTransport.GrpcPull];
        await using var cluster = await LoopbackCluster.StartAsync(3, Deadline, transportOf: r => planes[r]);
        var errors = LoopbackCluster.PerRank(3, r =>
        {
            var clock = Stopwatch.StartNew();
            var e = Assert.ThrowsAny<Exception>(() => cluster.Nodes[r].Reducer.AllReduceSum(step: 5, [ones([10])]));
            return (e.Message, clock.Elapsed);
        }, Deadline * 2);
        for (int r = 0; r < 3; r++)
            output.WriteLine($"ring tcp/tcp/grpc-pull: rank {r} failed after {errors[r].Elapsed.TotalMilliseconds:F0} ms (load {Load()}): {errors[r].Message}");
        // rank 2 meets both neighbours on another plane; each of them meets rank 2 on one side of the ring
        Assert.Matches(@"rank 2 uses the grpc-pull data plane but rank [01] \(127\.0\.0\.1:[0-9]+\) uses tcp: start every worker with the same --data-plane", errors[2].Message);
        Assert.Contains(Mixed(cluster, 0, DataPlaneTransport.Tcp, 2, DataPlaneTransport.GrpcPull), errors[0].Message);
        Assert.Contains(Mixed(cluster, 1, DataPlaneTransport.Tcp, 2, DataPlaneTransport.GrpcPull), errors[1].Message);
        Assert.All(errors, x => Assert.True(x.Elapsed < WellBefore, $"a rank learnt of the mixed planes only after {x.Elapsed.TotalSeconds:F1} s: {x.Message}"));
    }

    [Fact]
    public async Task TheHealthReplyNamesTheDataPlane()
    {
        await using var cluster = await LoopbackCluster.StartAsync(2, transportOf: r => r == 0 ? DataPlaneTransport.GrpcPull : DataPlaneTransport.Tcp);
        using var channels = new PeerChannels(cluster.Nodes.Select(n => n.Address).ToList(), 0, cluster.Token, Protocol.Codec.WireLimits.Default,
                                              DataPlaneTransport.Grpc);
        var health = await new Protocol.Wire.WorkerControl.WorkerControlClient(channels.Invoker(1)).HealthAsync(new Protocol.Wire.HealthRequest());
        Assert.Equal("tcp", health.DataPlane);
    }

    static string Load() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";
}
