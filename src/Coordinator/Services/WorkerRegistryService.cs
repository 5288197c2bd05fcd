using Grpc.Core;
using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Protocol.Jobs;

namespace Jetpack.Coordinator.Services;

/// <summary>jobs.proto's WorkerRegistry: workers register and heartbeat; thin over the worker grains.</summary>
public sealed class WorkerRegistryService(IGrainFactory grains, TimeProvider clock) : WorkerRegistry.WorkerRegistryBase
{
    public override async Task<WorkerReply> Register(RegisterWorkerRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.WorkerId)) throw Invalid("worker_id is required");
        if (!Uri.TryCreate(request.Endpoint, UriKind.Absolute, out _)) throw Invalid($"worker '{request.WorkerId}': endpoint '{request.Endpoint}' is not an absolute address");
        if (request.Slots < 1) throw Invalid($"worker '{request.WorkerId}': slots must be ≥ 1, got {request.Slots}");
        var worker = grains.GetGrain<IWorkerGrain>(request.WorkerId);
        await worker.Register(new WorkerRegistration(request.WorkerId, request.Endpoint, request.Slots));
        return Reply(request.WorkerId, await worker.Heartbeat());
    }

    public override async Task<WorkerReply> Heartbeat(HeartbeatRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.WorkerId)) throw Invalid("worker_id is required");
        var worker = grains.GetGrain<IWorkerGrain>(request.WorkerId);
        if (await worker.GetInfo() is null) throw new RpcException(new Status(StatusCode.NotFound, $"worker '{request.WorkerId}' is not registered: register before sending heartbeats"));
        return Reply(request.WorkerId, await worker.Heartbeat());
    }

    public override async Task<ListWorkersReply> ListWorkers(ListWorkersRequest request, ServerCallContext context)
    {
        var now = clock.GetUtcNow();
        var reply = new ListWorkersReply();
        foreach (var m in await grains.GetGrain<IWorkerPoolGrain>(0).Members())
            reply.Workers.Add(new WorkerInfo
            {
                WorkerId = m.Registration.WorkerId, Endpoint = m.Registration.Endpoint, Slots = m.Registration.Slots, Alive = m.Alive,
                HeartbeatAgeSeconds = (now - m.LastHeartbeat).TotalSeconds, JobId = m.Assignment?.JobId ?? "", Rank = m.Assignment?.Rank ?? 0,
            });
        return reply;
    }

    /// <summary>NotFound for a worker the pool counted dead: a heartbeat arriving after the gap may be a stale one the
    /// network delivered late, so only a registration brings the worker back (CoordinatorLink registers at once).</summary>
    static WorkerReply Reply(string workerId, HeartbeatOutcome outcome) => outcome.CountedDead is { } why
        ? throw new RpcException(new Status(StatusCode.NotFound, $"worker '{workerId}' was counted dead ({why}): a late heartbeat does not bring it back, register again"))
        : new() { JobId = outcome.Assignment?.JobId ?? "", Rank = outcome.Assignment?.Rank ?? 0 };

    static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));
}
