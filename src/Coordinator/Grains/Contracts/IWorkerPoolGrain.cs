using Orleans.Concurrency;

namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>
/// Live membership (key 0): a worker is alive while its last heartbeat is younger than
/// <c>WorkerPoolOptions.HeartbeatTimeout</c>. Hands live idle workers to jobs as ranks, and tells
/// a job when one of its workers dies. Membership is soft state, rebuilt from heartbeats. A worker
/// once counted dead comes back only through <see cref="Join"/> (a registration), never through a
/// heartbeat, which may be a stale one the network delivered late.
/// </summary>
public interface IWorkerPoolGrain : IGrainWithIntegerKey
{
    /// <summary>A registration: adds the worker, or brings back one counted dead.</summary>
    Task Join(WorkerRegistration registration, DateTimeOffset at);
    /// <summary>Counts a heartbeat and returns null, or, for a worker the pool counted dead (also one whose last
    /// heartbeat is older than the timeout at <paramref name="at"/>), does not count it and returns why it is
    /// dead: it must register again. An unknown worker is added (a restarted coordinator rebuilds its membership).</summary>
    Task<string?> Heartbeat(WorkerRegistration registration, DateTimeOffset at);
    Task Leave(string workerId);
    Task<IReadOnlyList<WorkerMember>> Members();
    /// <summary>Lends up to <paramref name="count"/> live idle workers to a job as ranks 0..n-1, at
    /// least <paramref name="minimum"/> (else none, and the error says how many are live). A job
    /// that already holds workers gets them back first. Workers in <paramref name="exclude"/> are
    /// left out (a partition dropped them from this job).</summary>
    Task<AcquireResult> Acquire(string jobId, int count, int minimum, string[] exclude);
    /// <summary>Returns every worker of the job to the pool (idempotent).</summary>
    Task Release(string jobId);
    /// <summary>The training driver found a worker gone (its process unreachable or replaced): it is
    /// dead from now until it registers again, and its job is told at once — without waiting out
    /// the heartbeat timeout (issue 6: "the coordinator notices within 10 s").</summary>
    Task ReportLost(string workerId, string reason);
    /// <summary>Marks workers whose heartbeat is too old as dead and tells their jobs (also run by a timer).</summary>
    Task CheckLiveness();
}
