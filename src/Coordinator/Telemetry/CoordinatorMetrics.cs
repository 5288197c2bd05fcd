using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Jetpack.Coordinator.Jobs;
using Jetpack.Protocol.Telemetry;

namespace Jetpack.Coordinator.Telemetry;

/// <summary>
/// The coordinator's instruments (names from <see cref="MetricNames"/>). Grains push the latest
/// values here (a few dictionary writes, never blocking); the observable gauges read them when
/// Prometheus scrapes. One instance per silo process.
/// </summary>
public sealed class CoordinatorMetrics : IDisposable
{
    readonly Meter meter;
    readonly Counter<long> recoveries;
    readonly Counter<long> recyclings;
    readonly ConcurrentDictionary<string, JobPhase> phases = new();
    readonly ConcurrentDictionary<string, DateTimeOffset> heartbeats = new();
    readonly TimeProvider clock;
    int workersUp;

    public CoordinatorMetrics(IMeterFactory meters, TimeProvider clock)
    {
        this.clock = clock;
        meter = meters.Create(MetricNames.CoordinatorMeter);
        meter.CreateObservableGauge(MetricNames.JobPhase, ObservePhases, description: "job phase: " + MetricNames.JobPhaseValues);
        meter.CreateObservableGauge(MetricNames.WorkersUp, () => Volatile.Read(ref workersUp), description: "workers whose last heartbeat is younger than the timeout");
        meter.CreateObservableGauge(MetricNames.WorkerHeartbeatAge, ObserveHeartbeatAges, unit: MetricNames.Units.Seconds, description: "age of each worker's last heartbeat");
        recoveries = meter.CreateCounter<long>(MetricNames.Recoveries, description: "recoveries after a worker loss");
        recyclings = meter.CreateCounter<long>(MetricNames.Recyclings, description: "checkpoint recyclings run (reuse is not counted)");
    }

    public void SetPhase(string jobId, JobPhase phase) => phases[jobId] = phase;

    public void RecordRecovery(string jobId) => recoveries.Add(1, new KeyValuePair<string, object?>(MetricNames.Labels.Job, jobId));

    public void RecordRecycling() => recyclings.Add(1);

    /// <summary>The pool's view after each liveness check: live count and every known worker's last heartbeat.</summary>
    public void SetWorkers(int up, IEnumerable<(string WorkerId, DateTimeOffset LastHeartbeat)> members)
    {
        Volatile.Write(ref workersUp, up);
        var seen = new HashSet<string>();
        foreach (var (id, at) in members) { heartbeats[id] = at; seen.Add(id); }
        foreach (var gone in heartbeats.Keys.Where(k => !seen.Contains(k)).ToList()) heartbeats.TryRemove(gone, out _);
    }

    IEnumerable<Measurement<int>> ObservePhases() =>
        phases.Select(p => new Measurement<int>((int)p.Value, new KeyValuePair<string, object?>(MetricNames.Labels.Job, p.Key)));

    IEnumerable<Measurement<double>> ObserveHeartbeatAges()
    {
        var now = clock.GetUtcNow();
        return heartbeats.Select(h => new Measurement<double>((now - h.Value).TotalSeconds, new KeyValuePair<string, object?>(MetricNames.Labels.Worker, h.Key)));
    }

    public void Dispose() => meter.Dispose();
}
