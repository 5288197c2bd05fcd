using System.Collections.Concurrent;
using Jetpack.GpuWorker.DataPlane;
using Jetpack.Model.Distributed;
using Jetpack.Protocol.Channels;
using Jetpack.Protocol.Codec;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.Tests.DataPlane;

/// <summary>
/// Issue 20, device discipline: every tensor the data plane hands the trainer sits on the rank's
/// configured device, and everything else it allocates is explicit host staging. TorchSharp-cpu has
/// only the CPU, so the configured device here is <c>cuda:0</c> — a device descriptor, never
/// allocated on — and a recording <see cref="TensorPlacement"/> notes every request and answers it on
/// the CPU. A receive that ignored the device (a plain <c>empty()</c>, or staging handed back
/// unplaced) fails these tests; on the CPU it would pass unnoticed.
/// </summary>
public class DevicePlacementTests
{
    static readonly Device Gpu = new(TorchSharp.DeviceType.CUDA, 0);

    sealed class RecordingPlacement : TensorPlacement
    {
        public readonly ConcurrentBag<long[]> Staged = [];
        public readonly ConcurrentBag<(IntPtr Handle, Device Device)> Placed = [];

        public override Tensor Staging(long[] shape, ScalarType dtype)
        {
            Staged.Add(shape);
            return base.Staging(shape, dtype);
        }

        public override Tensor Place(Tensor staging, Device target)
        {
            Placed.Add((staging.Handle, target));
            return staging;                                                  // stays on the CPU: the only device here
        }
    }

    [Theory]
    [InlineData(DataPlaneTransport.Grpc)]
    [InlineData(DataPlaneTransport.Tcp)]
    [InlineData(DataPlaneTransport.GrpcPull)]
    public async Task ReceivedSlotsArePlacedOnTheRanksDevice(DataPlaneTransport transport)
    {
        const int world = 3;
        var spies = Enumerable.Range(0, world).Select(_ => new RecordingPlacement { Device = Gpu }).ToArray();
        await using var cluster = await LoopbackCluster.StartAsync(world, transport: transport, placement: r => spies[r]);
        LoopbackCluster.PerRank(world, w =>
        {
            var send = Enumerable.Range(0, world).Select(v => full(new long[] { 2, 3 }, 10 * w + v, ScalarType.Float32)).ToList();
            var got = cluster.Nodes[w].Exchange.AllToAll(new ExchangeTag(1, 0, 0, ExchangePhase.Dispatch), send, Enumerable.Repeat(new long[] { 2, 3 }, world).ToList());
            for (int v = 0; v < world; v++)
            {
                if (v == w) continue;
                Assert.True(got[v].eq(10 * v + w).all().item<bool>(), $"rank {w}: piece from rank {v}");
            }
            return true;
        }, TimeSpan.FromSeconds(60));
        foreach (var (spy, r) in spies.Select((s, r) => (s, r)))
        {
            Assert.Equal(world - 1, spy.Placed.Count);                       // one placement per received piece
            Assert.All(spy.Placed, p => Assert.Equal($"{Gpu}", $"{p.Device}"));
            Assert.Equal(world - 1, spy.Staged.Count);                       // and nothing else was allocated for them
        }
    }

    [Fact]
    public async Task TheRingAllReduceStagesOnTheHostAndWritesTheSumsBackIntoTheCallersTensors()
    {
        const int world = 2;
        var spies = Enumerable.Range(0, world).Select(_ => new RecordingPlacement { Device = Gpu }).ToArray();
        await using var cluster = await LoopbackCluster.StartAsync(world, placement: r => spies[r]);
        var sums = LoopbackCluster.PerRank(world, w =>
        {
            // two tensors: the packed path that a GPU rank's gradients take
            var grads = new[] { full(new long[] { 5 }, w + 1f, ScalarType.Float32), full(new long[] { 2, 2 }, 10f * (w + 1), ScalarType.Float32) };
            cluster.Nodes[w].Reducer.AllReduceSum(1, grads);
            return (grads[0].eq(3f).all().item<bool>(), grads[1].eq(30f).all().item<bool>());
        }, TimeSpan.FromSeconds(60));
        Assert.All(sums, s => Assert.Equal((true, true), s));
        // every allocation went through the placement as host staging (the bucket and the receive
        // buffer); nothing was placed, because the sums went into the caller's own tensors
        Assert.All(spies, s => Assert.Empty(s.Placed));
        Assert.All(spies, s => Assert.Equal(2, s.Staged.Count));
    }
}
