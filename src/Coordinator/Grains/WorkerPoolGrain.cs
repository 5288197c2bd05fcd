using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Telemetry;
using Jetpack.Coordinator.Workers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Jetpack.Coordinator.Grains;

/// <summary>
/// Live membership and assignment of workers. Soft state (rebuilt from heartbeats, not persisted);
/// a timer checks liveness every <see cref="WorkerPoolOptions.CheckPeriod"/>, tells jobs about
/// workers they lost (one-way: the pool never waits on a job) and refreshes the worker gauges.
/// </summary>
public sealed class WorkerPoolGrain(IOptions<WorkerPoolOptions> options, CoordinatorMetrics metrics, TimeProvider clock, ILogger<WorkerPoolGrain> log)
    : Grain, IWorkerPoolGrain
{
    sealed class Member(WorkerRegistration registration, DateTimeOffset lastHeartbeat)
    {
        public WorkerRegistration Registration = registration;
        public DateTimeOffset LastHeartbeat = lastHeartbeat;
        public WorkerAssignment? Assignment;
        /// <summary>When the driver reported it gone; only a later heartbeat brings it back.</summary>
        public DateTimeOffset? LostAt;
    }

    readonly SortedDictionary<string, Member> members = new(StringComparer.Ordinal);
    readonly WorkerPoolOptions settings = options.Value;

    public override Task OnActivateAsync(CancellationToken cancel)
    {
        this.RegisterGrainTimer(CheckLiveness, new GrainTimerCreationOptions(settings.CheckPeriod, settings.CheckPeriod) { KeepAlive = true });
        return Task.CompletedTask;
    }

    bool Alive(Member m, DateTimeOffset now) =>
        WorkerLiveness.IsAlive(m.LastHeartbeat, now, settings.HeartbeatTimeout) && (m.LostAt is not { } lost || m.LastHeartbeat > lost);

    public Task Heartbeat(WorkerRegistration registration, DateTimeOffset at)
    {
        if (members.TryGetValue(registration.WorkerId, out var m))
        {
            m.Registration = registration;
            if (at > m.LastHeartbeat) m.LastHeartbeat = at;
        }
        else
        {
            members[registration.WorkerId] = new Member(registration, at);
            log.LogInformation("worker {Worker} joined ({Endpoint}, {Slots} slots)", registration.WorkerId, registration.Endpoint, registration.Slots);
        }
        return Task.CompletedTask;
    }

    public Task Leave(string workerId)
    {
        if (members.Remove(workerId, out var m) && m.Assignment is { } a) LoseWorker(m, a);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<WorkerMember>> Members()
    {
        var now = clock.GetUtcNow();
        return Task.FromResult<IReadOnlyList<WorkerMember>>(
            members.Values.Select(m => new WorkerMember(m.Registration, m.LastHeartbeat, Alive(m, now), m.Assignment)).ToList());
    }

    public Task<AcquireResult> Acquire(string jobId, int count, int minimum)
    {
        if (count < 1 || minimum < 1 || minimum > count) throw new ArgumentException($"job '{jobId}': cannot acquire {minimum}..{count} workers");
        ReleaseAssignments(jobId);
        var now = clock.GetUtcNow();
        var idle = members.Values.Where(m => m.Assignment is null && Alive(m, now)).Take(count).ToList();
        if (idle.Count < minimum)
        {
            int live = members.Values.Count(m => Alive(m, now));
            return Task.FromResult(new AcquireResult([], $"job '{jobId}' needs {minimum} worker{(minimum == 1 ? "" : "s")}, {idle.Count} idle of {live} live ({members.Count} registered)"));
        }
        var assigned = new List<WorkerAssignment>();
        foreach (var (m, rank) in idle.Select((m, r) => (m, r)))
        {
            m.Assignment = new WorkerAssignment(m.Registration.WorkerId, m.Registration.Endpoint, jobId, rank);
            assigned.Add(m.Assignment);
            _ = GrainFactory.GetGrain<IWorkerGrain>(m.Registration.WorkerId).Assign(m.Assignment);
        }
        log.LogInformation("job {Job}: acquired {Workers}", jobId, string.Join(", ", assigned.Select(a => $"{a.WorkerId}=r{a.Rank}")));
        return Task.FromResult(new AcquireResult(assigned, null));
    }

    public Task Release(string jobId)
    {
        ReleaseAssignments(jobId);
        return Task.CompletedTask;
    }

    void ReleaseAssignments(string jobId)
    {
        foreach (var m in members.Values.Where(m => m.Assignment?.JobId == jobId))
        {
            m.Assignment = null;
            _ = GrainFactory.GetGrain<IWorkerGrain>(m.Registration.WorkerId).Assign(null);
        }
    }

    public Task ReportLost(string workerId, string reason)
    {
        if (!members.TryGetValue(workerId, out var m)) return Task.CompletedTask;
        m.LostAt = clock.GetUtcNow();
        if (m.Assignment is { } a) LoseWorker(m, a, reason);
        return Task.CompletedTask;
    }

    public Task CheckLiveness()
    {
        var now = clock.GetUtcNow();
        foreach (var m in members.Values)
            if (m.Assignment is { } a && !Alive(m, now)) LoseWorker(m, a);
        metrics.SetWorkers(members.Values.Select(m => (m.Registration.WorkerId, m.LastHeartbeat, Alive(m, now))));
        return Task.CompletedTask;
    }

    void LoseWorker(Member m, WorkerAssignment a, string? reason = null)
    {
        double age = (clock.GetUtcNow() - m.LastHeartbeat).TotalSeconds;
        reason ??= $"worker '{a.WorkerId}' stopped heartbeating (last heartbeat {age:F1} s ago)";
        log.LogWarning("worker {Worker} (rank {Rank} of job {Job}) is dead: {Reason}", a.WorkerId, a.Rank, a.JobId, reason);
        m.Assignment = null;
        _ = GrainFactory.GetGrain<IWorkerGrain>(a.WorkerId).Assign(null);
        _ = GrainFactory.GetGrain<IJobGrain>(a.JobId).OnWorkerLost(a.WorkerId, reason);
    }
}
