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
    readonly Counter<long> growths;
    readonly Counter<long> recyclings;
    readonly ConcurrentDictionary<string, JobPhase> phases = new();
    readonly ConcurrentDictionary<string, (DateTimeOffset LastHeartbeat, bool Alive)> workers = new();
    readonly TimeProvider clock;
    int workersUp;

    public CoordinatorMetrics(IMeterFactory meters, TimeProvider clock)
    {
        this.clock = clock;
        meter = meters.Create(MetricNames.CoordinatorMeter);
        meter.CreateObservableGauge(MetricNames.JobPhase, ObservePhases, description: "job phase: " + MetricNames.JobPhaseValues);
        meter.CreateObservableGauge(MetricNames.WorkersUp, () => Volatile.Read(ref workersUp), description: "workers whose last heartbeat is younger than the timeout");
        meter.CreateObservableGauge(MetricNames.WorkerHeartbeatAge, ObserveHeartbeatAges, unit: MetricNames.Units.Seconds, description: "age of each worker's last heartbeat");
        meter.CreateObservableGauge(MetricNames.WorkerUp, ObserveWorkersUp, description: "1 while a registered worker is live, 0 once the coordinator holds it dead (heartbeat timeout or lost)");
        recoveries = meter.CreateCounter<long>(MetricNames.Recoveries, description: "recoveries after a worker loss");
        growths = meter.CreateCounter<long>(MetricNames.Growths, description: "elastic growths onto more workers at a checkpoint step");
        recyclings = meter.CreateCounter<long>(MetricNames.Recyclings, description: "checkpoint recyclings run (reuse is not counted)");
    }

    public void SetPhase(string jobId, JobPhase phase) => phases[jobId] = phase;

    public void RecordRecovery(string jobId) => recoveries.Add(1, new KeyValuePair<string, object?>(MetricNames.Labels.Job, jobId));

    public void RecordGrowth(string jobId) => growths.Add(1, new KeyValuePair<string, object?>(MetricNames.Labels.Job, jobId));

    public void RecordRecycling() => recyclings.Add(1);

    /// <summary>The pool's view after each liveness check: every known worker's last heartbeat and whether it is live.</summary>
    public void SetWorkers(IEnumerable<(string WorkerId, DateTimeOffset LastHeartbeat, bool Alive)> members)
    {
        var seen = new HashSet<string>();
        int up = 0;
        foreach (var (id, at, alive) in members)
        {
            workers[id] = (at, alive);
            seen.Add(id);
            if (alive) up++;
        }
        Volatile.Write(ref workersUp, up);
        foreach (var gone in workers.Keys.Where(k => !seen.Contains(k)).ToList()) workers.TryRemove(gone, out _);
    }

    IEnumerable<Measurement<int>> ObservePhases() =>
        phases.Select(p => new Measurement<int>((int)p.Value, new KeyValuePair<string, object?>(MetricNames.Labels.Job, p.Key)));

    IEnumerable<Measurement<double>> ObserveHeartbeatAges()
    {
        var now = clock.GetUtcNow();
        return workers.Select(w => new Measurement<double>((now - w.Value.LastHeartbeat).TotalSeconds, new KeyValuePair<string, object?>(MetricNames.Labels.Worker, w.Key)));
    }

    IEnumerable<Measurement<int>> ObserveWorkersUp() =>
        workers.Select(w => new Measurement<int>(w.Value.Alive ? 1 : 0, new KeyValuePair<string, object?>(MetricNames.Labels.Worker, w.Key)));

    public void Dispose() => meter.Dispose();
}
