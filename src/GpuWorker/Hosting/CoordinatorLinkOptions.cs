namespace Jetpack.GpuWorker.Hosting;

/// <summary>How a worker joins a coordinator: its WorkerRegistry address, the id and endpoint it registers, how often it heartbeats.</summary>
public sealed record CoordinatorLinkOptions
{
    /// <summary>The coordinator's gRPC address (JobService and WorkerRegistry), e.g. http://10.0.0.2:5080.</summary>
    public required Uri Address { get; init; }
    /// <summary>The id this worker registers under (default: host name and port).</summary>
    public string? WorkerId { get; init; }
    /// <summary>The host the coordinator and the peers reach this worker at (default: the listen address, or the host name when listening on all).</summary>
    public string? AdvertiseHost { get; init; }
    /// <summary>Between heartbeats; well under the coordinator's heartbeat timeout (<see cref="Protocol.Control.LivenessDefaults"/>).</summary>
    public TimeSpan HeartbeatInterval { get; init; } = Protocol.Control.LivenessDefaults.HeartbeatInterval;
    /// <summary>The longest wait between attempts while the coordinator is unreachable.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(5);

    public void Validate()
    {
        if (Address.Scheme is not ("http" or "https")) throw new ArgumentException($"--coordinator '{Address}' is not an http:// or https:// address");
        if (HeartbeatInterval <= TimeSpan.Zero) throw new ArgumentException($"--heartbeat-seconds must be > 0, got {HeartbeatInterval.TotalSeconds}");
        if (WorkerId is { } id && string.IsNullOrWhiteSpace(id)) throw new ArgumentException("--worker-id must not be empty");
    }
}
