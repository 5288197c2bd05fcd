using Orleans.Concurrency;

namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>
/// Live membership (key 0): a worker is alive while its last heartbeat is younger than
/// <c>WorkerPoolOptions.HeartbeatTimeout</c>. Hands live idle workers to jobs as ranks, and tells
/// a job when one of its workers dies. Membership is soft state, rebuilt from heartbeats.
/// </summary>
public interface IWorkerPoolGrain : IGrainWithIntegerKey
{
    [OneWay] Task Heartbeat(WorkerRegistration registration, DateTimeOffset at);
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
    /// dead from now until it heartbeats again, and its job is told at once — without waiting out
    /// the heartbeat timeout (issue 6: "the coordinator notices within 10 s").</summary>
    Task ReportLost(string workerId, string reason);
    /// <summary>Marks workers whose heartbeat is too old as dead and tells their jobs (also run by a timer).</summary>
    Task CheckLiveness();
}
