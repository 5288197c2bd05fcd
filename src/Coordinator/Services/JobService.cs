using Grpc.Core;
using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Jobs;
using Jetpack.Protocol.Jobs;

namespace Jetpack.Coordinator.Services;

/// <summary>
/// jobs.proto's JobService: validates and maps at the edge, delegates to the job grains, and
/// fails with the exact status code and the ids involved.
/// </summary>
public sealed class JobService(IGrainFactory grains) : Protocol.Jobs.JobService.JobServiceBase
{
    /// <summary>How long one long poll of Watch waits inside the grain before re-checking the call.</summary>
    static readonly TimeSpan WatchPoll = TimeSpan.FromSeconds(5);

    public override async Task<JobStatus> Submit(SubmitJobRequest request, ServerCallContext context)
    {
        string source = request.Source is { Length: > 0 } s ? s : "(submitted spec)";
        string format = request.Format is { Length: > 0 } f ? f : "yaml";
        JobSpec spec;
        try
        {
            spec = JobSpecReader.Parse(request.SpecText, format, source);
            JobSpecValidator.Validate(spec, source);
        }
        catch (JobSpecException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        string jobId = request.JobId is { Length: > 0 } id ? id : spec.Name;
        var outcome = await Job(jobId).Submit(new JobSubmission(request.SpecText, format, source));
        return outcome.Refusal switch
        {
            SubmitRefusal.None => outcome.Job!.ToProto(),
            SubmitRefusal.Conflict => throw new RpcException(new Status(StatusCode.AlreadyExists, outcome.Message)),
            _ => throw new RpcException(new Status(StatusCode.InvalidArgument, outcome.Message)),
        };
    }

    public override async Task<JobStatus> GetStatus(JobRequest request, ServerCallContext context) =>
        (await Job(request.JobId).GetStatus() ?? throw NotFound(request.JobId)).ToProto();

    public override async Task Watch(JobRequest request, IServerStreamWriter<JobStatus> responseStream, ServerCallContext context)
    {
        var job = Job(request.JobId);
        var status = await job.GetStatus() ?? throw NotFound(request.JobId);
        await responseStream.WriteAsync(status.ToProto(), context.CancellationToken);
        while (!JobTransitions.IsTerminal(status.Phase) && !context.CancellationToken.IsCancellationRequested)
        {
            var next = await job.WaitForChange(status.Version, WatchPoll) ?? throw NotFound(request.JobId);
            if (next.Version == status.Version) continue;
            status = next;
            await responseStream.WriteAsync(status.ToProto(), context.CancellationToken);
        }
    }

    public override async Task<JobStatus> Cancel(JobRequest request, ServerCallContext context) =>
        (await Job(request.JobId).Cancel("cancelled by the user") ?? throw NotFound(request.JobId)).ToProto();

    public override async Task<ListJobsReply> List(ListJobsRequest request, ServerCallContext context)
    {
        var ids = await grains.GetGrain<IJobIndexGrain>(0).List();
        var statuses = await Task.WhenAll(ids.Select(id => Job(id).GetStatus()));
        var reply = new ListJobsReply();
        reply.Jobs.AddRange(statuses.OfType<JobSnapshot>().Select(s => s.ToProto()));
        return reply;
    }

    IJobGrain Job(string jobId)
    {
        if (string.IsNullOrWhiteSpace(jobId)) throw new RpcException(new Status(StatusCode.InvalidArgument, "job_id is required"));
        return grains.GetGrain<IJobGrain>(jobId);
    }

    static RpcException NotFound(string jobId) => new(new Status(StatusCode.NotFound, $"job '{jobId}' not found"));
}
