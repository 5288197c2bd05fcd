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
/// A worker counted dead (no heartbeat for the timeout, or lost by a driver) comes back only by
/// registering again, never by a heartbeat: a heartbeat arriving after the gap may be one the network
/// held back — the kernel still retransmits a killed worker's unsent heartbeats once a downed link
/// comes back up (issue 20, fault 2) — so it proves nothing. The NotFound it gets makes a live worker
/// register at once (one round trip); a dead one cannot.
/// </summary>
public sealed class WorkerPoolGrain(IOptions<WorkerPoolOptions> options, CoordinatorMetrics metrics, TimeProvider clock, ILogger<WorkerPoolGrain> log)
    : Grain, IWorkerPoolGrain
{
    sealed class Member(WorkerRegistration registration, DateTimeOffset lastHeartbeat)
    {
        public WorkerRegistration Registration = registration;
        public DateTimeOffset LastHeartbeat = lastHeartbeat;
        public WorkerAssignment? Assignment;
        /// <summary>Why the pool counted it dead (null: not counted dead); only a registration clears it.</summary>
        public string? Dead;
    }

    readonly SortedDictionary<string, Member> members = new(StringComparer.Ordinal);
    readonly WorkerPoolOptions settings = options.Value;

    public override Task OnActivateAsync(CancellationToken cancel)
    {
        this.RegisterGrainTimer(CheckLiveness, new GrainTimerCreationOptions(settings.CheckPeriod, settings.CheckPeriod) { KeepAlive = true });
        return Task.CompletedTask;
    }

    bool Alive(Member m, DateTimeOffset now) => m.Dead is null && WorkerLiveness.IsAlive(m.LastHeartbeat, now, settings.HeartbeatTimeout);

    public Task Join(WorkerRegistration registration, DateTimeOffset at)
    {
        if (members.TryGetValue(registration.WorkerId, out var m))
        {
            if (m.Dead is { } why)
                log.LogInformation("worker {Worker} registered again ({Endpoint}); it was dead: {Reason}", registration.WorkerId, registration.Endpoint, why);
            m.Registration = registration;
            m.Dead = null;
            if (at > m.LastHeartbeat) m.LastHeartbeat = at;
        }
        else Add(registration, at);
        return Task.CompletedTask;
    }

    public Task<string?> Heartbeat(WorkerRegistration registration, DateTimeOffset at)
    {
        if (!members.TryGetValue(registration.WorkerId, out var m))
        {
            Add(registration, at);   // a restarted coordinator rebuilds its membership from heartbeats
            return Task.FromResult<string?>(null);
        }
        if (m.Dead is null && !WorkerLiveness.IsAlive(m.LastHeartbeat, at, settings.HeartbeatTimeout)) CountDead(m, at, null);
        if (m.Dead is { } why)
        {
            log.LogInformation("refused a heartbeat of worker {Worker}: counted dead ({Reason}); it must register again", registration.WorkerId, why);
            return Task.FromResult<string?>(why);
        }
        m.Registration = registration;
        if (at > m.LastHeartbeat) m.LastHeartbeat = at;
        return Task.FromResult<string?>(null);
    }

    void Add(WorkerRegistration registration, DateTimeOffset at)
    {
        members[registration.WorkerId] = new Member(registration, at);
        log.LogInformation("worker {Worker} joined ({Endpoint}, {Slots} slots)", registration.WorkerId, registration.Endpoint, registration.Slots);
    }

    public Task Leave(string workerId)
    {
        if (members.Remove(workerId, out var m) && m.Assignment is not null) CountDead(m, clock.GetUtcNow(), $"worker '{workerId}' left the pool");
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<WorkerMember>> Members()
    {
        var now = clock.GetUtcNow();
        return Task.FromResult<IReadOnlyList<WorkerMember>>(
            members.Values.Select(m => new WorkerMember(m.Registration, m.LastHeartbeat, Alive(m, now), m.Assignment)).ToList());
    }

    public Task<AcquireResult> Acquire(string jobId, int count, int minimum, string[] exclude)
    {
        if (count < 1 || minimum < 1 || minimum > count) throw new ArgumentException($"job '{jobId}': cannot acquire {minimum}..{count} workers");
        ReleaseAssignments(jobId);
        var now = clock.GetUtcNow();
        var idle = members.Values.Where(m => m.Assignment is null && Alive(m, now) && !exclude.Contains(m.Registration.WorkerId)).Take(count).ToList();
        if (idle.Count < minimum)
        {
            int live = members.Values.Count(m => Alive(m, now));
            string left = exclude.Length == 0 ? "" : $", {string.Join(", ", exclude)} left out after a partition";
            return Task.FromResult(new AcquireResult([], $"job '{jobId}' needs {minimum} worker{(minimum == 1 ? "" : "s")}, {idle.Count} idle of {live} live ({members.Count} registered{left})"));
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
        if (members.TryGetValue(workerId, out var m)) CountDead(m, clock.GetUtcNow(), reason);
        return Task.CompletedTask;
    }

    public Task CheckLiveness()
    {
        var now = clock.GetUtcNow();
        foreach (var m in members.Values)
            if (m.Dead is null && !WorkerLiveness.IsAlive(m.LastHeartbeat, now, settings.HeartbeatTimeout)) CountDead(m, now, null);
        metrics.SetWorkers(members.Values.Select(m => (m.Registration.WorkerId, m.LastHeartbeat, Alive(m, now))));
        return Task.CompletedTask;
    }

    /// <summary>Counts <paramref name="m"/> dead until it registers again (a reason given: a driver lost it; none: its
    /// heartbeats stopped), and tells its job, if it has one.</summary>
    void CountDead(Member m, DateTimeOffset now, string? reason)
    {
        string id = m.Registration.WorkerId;
        reason ??= $"worker '{id}' stopped heartbeating (last heartbeat {(now - m.LastHeartbeat).TotalSeconds:F1} s ago, timeout {settings.HeartbeatTimeout.TotalSeconds:F1} s)";
        m.Dead ??= $"{reason}; counted dead at {now:HH:mm:ss.f}";
        if (m.Assignment is not { } a)
        {
            log.LogWarning("worker {Worker} (idle) is dead: {Reason}", id, reason);
            return;
        }
        log.LogWarning("worker {Worker} (rank {Rank} of job {Job}) is dead: {Reason}", id, a.Rank, a.JobId, reason);
        m.Assignment = null;
        _ = GrainFactory.GetGrain<IWorkerGrain>(id).Assign(null);
        _ = GrainFactory.GetGrain<IJobGrain>(a.JobId).OnWorkerLost(id, reason);
    }
}
