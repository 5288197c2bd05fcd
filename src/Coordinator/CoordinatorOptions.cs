namespace Jetpack.Coordinator;

/// <summary>How the coordinator's silo clusters and stores grain state.</summary>
public enum ClusteringMode
{
    /// <summary>One machine: Orleans localhost clustering, grain state in files under the data directory (DESIGN.md).</summary>
    Localhost,
    /// <summary>A cluster: Redis membership table and Redis grain storage.</summary>
    Redis,
    /// <summary>Redis as above, plus Orleans' Kubernetes hosting (pod name/IP from the downward API).</summary>
    Kubernetes,
}

/// <summary>The coordinator process: silo, JobService endpoint, data directory, cluster token.</summary>
public sealed class CoordinatorOptions
{
    public ClusteringMode Clustering { get; set; } = ClusteringMode.Localhost;
    /// <summary>Jobs' outputs, recycled checkpoints and (localhost) grain state live here.</summary>
    public string DataDirectory { get; set; } = "jetpack-data";
    /// <summary>StackExchange.Redis configuration string, e.g. "127.0.0.1:6379" (Redis and Kubernetes modes).</summary>
    public string? Redis { get; set; }
    public string ClusterId { get; set; } = "jetpack";
    public string ServiceId { get; set; } = "jetpack";
    /// <summary>Address the JobService and the HTTP endpoints listen on.</summary>
    public string ListenAddress { get; set; } = "127.0.0.1";
    /// <summary>JobService, gRPC over cleartext HTTP/2 (0 = any free port; the bound address is printed).</summary>
    public int Port { get; set; } = 5080;
    /// <summary>HTTP/1.1: /metrics (Prometheus), /healthz (liveness), /readyz (readiness) (0 = any free port).</summary>
    public int MetricsPort { get; set; } = 9464;
    public int SiloPort { get; set; } = 11111;
    public int GatewayPort { get; set; } = 30000;
    /// <summary>When set, every JobService call must carry "authorization: Bearer &lt;token&gt;" (DESIGN.md "Trust boundaries").</summary>
    public string? ClusterToken { get; set; }

    public string RecycledDirectory => Path.Combine(DataDirectory, "recycled");
    public string JobsDirectory => Path.Combine(DataDirectory, "jobs");
    public string GrainStateDirectory => Path.Combine(DataDirectory, "grains");

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(DataDirectory)) throw new ArgumentException("--data-dir is required");
        if (Clustering != ClusteringMode.Localhost && string.IsNullOrWhiteSpace(Redis))
            throw new ArgumentException($"--redis is required for --clustering {Clustering.ToString().ToLowerInvariant()}");
        foreach (var (name, port) in new[] { ("--port", Port), ("--metrics-port", MetricsPort), ("--silo-port", SiloPort), ("--gateway-port", GatewayPort) })
            if (port is < 0 or > 65535) throw new ArgumentException($"{name} must be in 0..65535, got {port}");
        // null = no authentication (tests, a private loopback); a set token must be a real one: an empty
        // one used to switch authentication off silently (issue 12).
        if (ClusterToken is not null)
        {
            try { _ = new Protocol.Security.ClusterToken(ClusterToken); }
            catch (ArgumentException e) { throw new ArgumentException("cluster token: " + e.Message, e); }
        }
    }
}
