using Jetpack.GpuWorker.DataPlane;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Security;

namespace Jetpack.GpuWorker.Hosting;

/// <summary>
/// One worker process: its rank in a world of <see cref="WorldSize"/>, the static peer list
/// (host:port of every rank, its own included), the port it listens on (0 = any free one, for tests
/// that connect peers after start), the job it serves, and the cluster token.
/// </summary>
public sealed record WorkerOptions
{
    public required int Rank { get; init; }
    public required int WorldSize { get; init; }
    public IReadOnlyList<string>? Peers { get; init; }
    public int Port { get; init; }
    /// <summary>HTTP/1.1 port of <c>/metrics</c> on loopback (0 = any free one; the readiness line names it).</summary>
    public int MetricsPort { get; init; }
    /// <summary>TCP port of the raw data plane on the listen address (0 = any free one; peers ask Health for it).</summary>
    public int DataPort { get; init; }
    public string JobId { get; init; } = "job";
    public required ClusterToken Token { get; init; }
    public ExchangeOptions Exchange { get; init; } = new();
    public WireLimits Limits { get; init; } = WireLimits.Default;
    /// <summary>Allocates what the data plane receives and places it on the job's device (tests pass a recording one).</summary>
    public TensorPlacement? Placement { get; init; }
    /// <summary>Exit when this process ends (the launcher's pid), so no worker outlives its launcher.</summary>
    public int? ParentPid { get; init; }
    /// <summary>torch intra-op threads (0 = torch's default).</summary>
    public int Threads { get; init; }
    /// <summary>Address the gRPC server listens on (loopback unless a cluster spans machines).</summary>
    public string ListenAddress { get; init; } = "127.0.0.1";
    /// <summary>Join this coordinator (its WorkerRegistry) instead of a static peer list: rank, world and peers come per run (JoinJob).</summary>
    public CoordinatorLinkOptions? Coordinator { get; init; }

    public void Validate()
    {
        if (WorldSize < 1) throw new ArgumentException($"--world must be ≥ 1, got {WorldSize}");
        if (Rank < 0 || Rank >= WorldSize) throw new ArgumentException($"--rank {Rank} is outside the world of {WorldSize}");
        if (Peers is not null && Peers.Count != WorldSize)
            throw new ArgumentException($"--peers lists {Peers.Count} addresses for a world of {WorldSize}");
        if (Port is < 0 or > 65535) throw new ArgumentException($"--port {Port} is not a TCP port");
        if (MetricsPort is < 0 or > 65535) throw new ArgumentException($"--metrics-port {MetricsPort} is not a TCP port");
        if (DataPort is < 0 or > 65535) throw new ArgumentException($"--data-port {DataPort} is not a TCP port");
        if (string.IsNullOrWhiteSpace(JobId)) throw new ArgumentException("--job must not be empty");
        if (!System.Net.IPAddress.TryParse(ListenAddress, out _)) throw new ArgumentException($"--listen '{ListenAddress}' is not an IP address");
        Coordinator?.Validate();
        Exchange.Validate();
        Limits.Validate();
    }

    /// <summary>The port to listen on: --port if given, else the own entry of --peers.</summary>
    public int ListenPort => Port != 0 || Peers is null ? Port : ParsePort(Peers[Rank]);

    public static int ParsePort(string hostPort)
    {
        int colon = hostPort.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(hostPort[(colon + 1)..], out int port) || port is < 1 or > 65535)
            throw new ArgumentException($"peer address '{hostPort}' is not host:port");
        return port;
    }
}
