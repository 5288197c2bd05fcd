using Grpc.Core;
using Grpc.Net.Client;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Protocol.Jobs;

namespace Jetpack.Coordinator.Tests.Training;

/// <summary>
/// A `jetpack coordinator` process on Redis clustering and grain storage, as the restart tests run it:
/// the cluster's token in a file, fixed ports (a restarted process takes the same address), a data
/// directory, a 10 s heartbeat timeout and 90 s to acquire workers; and job/registry clients to it.
/// </summary>
public sealed class RedisCoordinator : IDisposable
{
    readonly GrpcChannel channel;
    readonly Metadata headers;

    public RedisCoordinator(DriverCluster cluster, RedisServer redis, string clusterId)
    {
        string tokenFile = cluster.Dir.File("cluster.token");
        File.WriteAllText(tokenFile, cluster.Token.Value);
        (Port, SiloPort, Data) = (FreePort.Next(), FreePort.Next(), cluster.Dir.File("data"));
        Args = ["--clustering", "redis", "--redis", redis.Configuration, "--cluster-id", clusterId, "--token-file", tokenFile,
                "--heartbeat-timeout", "10", "--acquire-timeout", "90"];
        Address = new Uri($"http://127.0.0.1:{Port}");
        channel = GrpcChannel.ForAddress(Address);
        Jobs = new JobService.JobServiceClient(channel);
        Registry = new WorkerRegistry.WorkerRegistryClient(channel);
        headers = new Metadata { { "authorization", "Bearer " + cluster.Token.Value } };
    }

    public int Port { get; }
    public int SiloPort { get; }
    public string Data { get; }
    public string[] Args { get; }
    public Uri Address { get; }
    public JobService.JobServiceClient Jobs { get; }
    public WorkerRegistry.WorkerRegistryClient Registry { get; }

    /// <summary>Call options with the token and a 30 s deadline.</summary>
    public CallOptions Call() => new(headers, DateTime.UtcNow.AddSeconds(30));

    /// <summary>Starts a coordinator process (again: the same data directory, ports and arguments).</summary>
    public CoordinatorProcess Start() => new(Data, Port, SiloPort, Args);

    public void Dispose() => channel.Dispose();
}
