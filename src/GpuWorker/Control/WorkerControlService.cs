using Grpc.Core;
using Jetpack.GpuWorker.Hosting;
using Jetpack.Model.Distributed;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.Control;

/// <summary>The gRPC edge of worker control: thin, maps messages to the node and back.</summary>
public sealed class WorkerControlService(WorkerNode node) : WorkerControl.WorkerControlBase
{
    public override Task<HealthReply> Health(HealthRequest request, ServerCallContext context) =>
        Task.FromResult(new HealthReply
        {
            Rank = node.Options.Rank, WorldSize = node.Options.WorldSize, JobId = node.Membership.JobId, ProcessId = Environment.ProcessId,
        });

    public override async Task<BenchExchangeReply> BenchExchange(BenchExchangeRequest request, ServerCallContext context)
    {
        if (request.BytesPerPeer < 4 || request.Rounds < 1 || request.Warmup < 0)
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"bench: bytes_per_peer ≥ 4, rounds ≥ 1, warmup ≥ 0 (got {request.BytesPerPeer}, {request.Rounds}, {request.Warmup})"));
        try
        {
            return await Task.Run(() => ExchangeBench.Run(node, request));
        }
        catch (ExchangeFailedException e)
        {
            throw new RpcException(new Status(StatusCode.Aborted, e.Message));
        }
    }
}
