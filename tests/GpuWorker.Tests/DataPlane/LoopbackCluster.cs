using Jetpack.GpuWorker.DataPlane;
using Jetpack.GpuWorker.Hosting;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Channels;

namespace Jetpack.GpuWorker.Tests.DataPlane;

/// <summary>
/// N real Kestrel servers (one <see cref="WorkerNode"/> per rank) on free loopback ports in this
/// process, connected to each other: the gRPC exchange and reducer between real sockets.
/// </summary>
public sealed class LoopbackCluster : IAsyncDisposable
{
    public List<WorkerNode> Nodes { get; } = [];
    public ClusterToken Token { get; } = ClusterToken.Generate();
    public const string Job = "test-job";

    public static async Task<LoopbackCluster> StartAsync(int world, TimeSpan? deadline = null, WireLimits? limits = null, long bucketElements = 4L << 20,
                                                     DataPlaneTransport transport = DataPlaneTransport.Grpc, Func<int, TensorPlacement>? placement = null,
                                                     ClusterTls? tls = null, Func<int, DataPlaneTransport>? transportOf = null)
    {
        var c = new LoopbackCluster();
        for (int r = 0; r < world; r++)
            c.Nodes.Add(await WorkerHost.StartAsync(new WorkerOptions
            {
                Rank = r, WorldSize = world, Port = 0, JobId = Job, Token = c.Token, Limits = limits ?? WireLimits.Default, Placement = placement?.Invoke(r),
                Exchange = new ExchangeOptions { Deadline = deadline ?? TimeSpan.FromSeconds(20), BucketElements = bucketElements, Transport = transportOf?.Invoke(r) ?? transport },
                Tls = tls,
            }));
        var peers = c.Nodes.Select(n => n.Address).ToList();
        if (world > 1) foreach (var n in c.Nodes) n.Connect(peers);        // a world of one connects itself
        return c;
    }

    /// <summary>Runs one function per rank, each on its own thread (they block in the exchange), and returns their results.</summary>
    public static T[] PerRank<T>(int world, Func<int, T> body, TimeSpan timeout)
    {
        var tasks = Enumerable.Range(0, world)
            .Select(r => Task.Factory.StartNew(() => body(r), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default))
            .ToArray();
        Assert.True(Task.WaitAll(tasks.Cast<Task>().ToArray(), timeout), $"ranks did not finish within {timeout.TotalSeconds} s");
        return tasks.Select(t => t.Result).ToArray();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var n in Nodes) await n.DisposeAsync();
    }
}
