using Grpc.Core;
using Jetpack.GpuWorker.Hosting;
using Jetpack.GpuWorker.Jobs;
using Jetpack.Model.Distributed;
using Jetpack.Protocol.Channels;
using Jetpack.Protocol.Wire;
using Jetpack.Application.Runs;

namespace Jetpack.GpuWorker.Control;

/// <summary>The gRPC edge of worker control: thin, maps messages to the node and its job and back.</summary>
public sealed class WorkerControlService(WorkerNode node) : WorkerControl.WorkerControlBase
{
    private static readonly object StartGate = new();

    public override Task<HealthReply> Health(HealthRequest request, ServerCallContext context)
    {
        var reply = new HealthReply
        {
            Rank = node.Membership.Rank, WorldSize = node.Membership.WorldSize, JobId = node.CurrentJob is { Finished: false } j ? j.JobId : "",
            ProcessId = Environment.ProcessId, DataPort = node.DataPort, DataPlane = node.Options.Exchange.Transport.Name(),
        };
        reply.UnreachableRanks.Add(node.UnreachablePeers);
        return Task.FromResult(reply);
    }

    public override async Task<JoinJobReply> JoinJob(JoinJobRequest request, ServerCallContext context)
    {
        if (node.Options.Coordinator is null)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"rank {node.Membership.Rank} was started with a static rank and peers (launcher), not by a coordinator: it joins no run"));
        if (string.IsNullOrWhiteSpace(request.RunId)) throw new RpcException(new Status(StatusCode.InvalidArgument, "JoinJob: run_id is empty"));
        if (request.WorldSize < 1 || request.Rank < 0 || request.Rank >= request.WorldSize || request.Peers.Count != request.WorldSize)
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"JoinJob '{request.RunId}': rank {request.Rank} of a world of {request.WorldSize} with {request.Peers.Count} peer addresses"));
        try
        {
            foreach (var p in request.Peers) WorkerOptions.ParsePort(p);
            string? aborted = await node.JoinAsync(request.RunId, request.Rank, request.WorldSize, request.Peers, node.Options.Exchange.Deadline);
            return new JoinJobReply { ProcessId = Environment.ProcessId, AbortedRunId = aborted ?? "" };
        }
        catch (ArgumentException e) { throw new RpcException(new Status(StatusCode.InvalidArgument, $"JoinJob '{request.RunId}': {e.Message}")); }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"JoinJob '{request.RunId}': {e.Message}"));
        }
    }

    public override async Task<StartJobReply> StartJob(StartJobRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.JobId)) throw new RpcException(new Status(StatusCode.InvalidArgument, "StartJob: job_id is empty"));
        if (node.Options.Coordinator is not null && request.JobId != node.Membership.JobId)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"StartJob '{request.JobId}': this worker joined run '{node.Membership.JobId}' (JoinJob first)"));
        WorkerJobSpec spec;
        try { spec = WorkerJobSpec.Parse(request.SpecJson); }
        catch (ArgumentException e) { throw new RpcException(new Status(StatusCode.InvalidArgument, $"rank {node.Membership.Rank}: {e.Message}")); }
        IWorkerJob job;
        lock (StartGate)
        {
            if (node.CurrentJob is { Finished: false } running)
                throw new RpcException(new Status(StatusCode.FailedPrecondition, $"rank {node.Membership.Rank} is running job '{running.JobId}'"));
            node.Membership.JobId = request.JobId;                       // from now on the data plane serves this job only
            job = node.CurrentJob = TrainingJob.Start(node, request.JobId, spec,
                                                      string.IsNullOrEmpty(request.ResumeFrom) ? null : request.ResumeFrom, request.UntilStep);
        }
        try
        {
            return new StartJobReply { StartStep = await job.Started };
        }
        catch (Exception e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"rank {node.Membership.Rank}: job '{request.JobId}' setup failed: {e.Message}"));
        }
    }

    private IWorkerJob Job(string jobId) =>
        node.CurrentJob is { } j && j.JobId == jobId ? j
        : throw new RpcException(new Status(StatusCode.NotFound, $"rank {node.Membership.Rank} has no job '{jobId}'"));

    public override Task<StopJobReply> StopJob(StopJobRequest request, ServerCallContext context)
    {
        try { return Task.FromResult(new StopJobReply { StoppedAtStep = Job(request.JobId).RequestStop(request.AfterStep) }); }
        catch (InvalidOperationException e) { throw new RpcException(new Status(StatusCode.FailedPrecondition, e.Message)); }
    }

    public override async Task<CheckpointReply> CheckpointNow(CheckpointRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.Directory)) throw new RpcException(new Status(StatusCode.InvalidArgument, "CheckpointNow: directory is empty"));
        try
        {
            long step = await Job(request.JobId).RequestCheckpoint(request.Directory, request.AfterStep).WaitAsync(context.CancellationToken);
            return new CheckpointReply { Step = step, Directory = request.Directory };
        }
        catch (InvalidOperationException e) { throw new RpcException(new Status(StatusCode.FailedPrecondition, e.Message)); }
    }

    public override async Task WatchProgress(ProgressRequest request, IServerStreamWriter<Progress> responseStream, ServerCallContext context)
    {
        var job = Job(request.JobId);
        int sent = 0;
        while (true)
        {
            var (items, more) = job.Read(sent);
            foreach (var p in items)
            {
                await responseStream.WriteAsync(p, context.CancellationToken);
                sent++;
                if (p.End != RunEnd.Unspecified) return;
            }
            await more.WaitAsync(context.CancellationToken);
        }
    }

    public override async Task<LoadShardReply> LoadShard(IAsyncStreamReader<TensorChunk> requestStream, ServerCallContext context)
    {
        if (node.CurrentJob is { Finished: false } running)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"rank {node.Membership.Rank} is running job '{running.JobId}': load a shard between jobs"));
        var tensors = await ShardReceiver.ReadAsync(requestStream, node.Options.Limits, node.Membership.Rank, context.CancellationToken);
        node.SetLoadedShard(tensors);
        return new LoadShardReply { Tensors = tensors.Count, Bytes = tensors.Values.Sum(t => t.numel() * t.element_size()) };
    }

    public override async Task<BenchExchangeReply> BenchExchange(BenchExchangeRequest request, ServerCallContext context)
    {
        if (request.BytesPerPeer < 4 || request.Rounds < 1 || request.Warmup < 0)
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"bench: bytes_per_peer ≥ 4, rounds ≥ 1, warmup ≥ 0 (got {request.BytesPerPeer}, {request.Rounds}, {request.Warmup})"));
        if (node.CurrentJob is { Finished: false } running)   // its exchange tags would share the job's key space
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"rank {node.Membership.Rank} is running job '{running.JobId}': benchmark between jobs"));
        try
        {
            return await Task.Factory.StartNew(() => ExchangeBench.Run(node, request), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        catch (ExchangeFailedException e)
        {
            throw new RpcException(new Status(StatusCode.Aborted, e.Message));
        }
    }
}
