using Grpc.Core;
using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Jobs;
using Jetpack.Protocol.Jobs;
using Microsoft.Extensions.Options;
using Jetpack.Application.Runs;

namespace Jetpack.Coordinator.Services;

/// <summary>
/// jobs.proto's JobService: validates and maps at the edge, delegates to the job grains, and
/// fails with the exact status code and the ids involved. Every request is hostile until checked
/// (issue 12): every spec error, job id and output path problem is InvalidArgument with its message.
/// </summary>
public sealed class JobService(IGrainFactory grains, IOptions<CoordinatorOptions> options) : Protocol.Jobs.JobService.JobServiceBase
{
    /// <summary>How long one long poll of Watch waits inside the grain before re-checking the call.</summary>
    static readonly TimeSpan WatchPoll = TimeSpan.FromSeconds(5);

    public override async Task<JobStatus> Submit(SubmitJobRequest request, ServerCallContext context)
    {
        string source = request.Source is { Length: > 0 } s ? s : "(submitted spec)";
        string format = request.Format is { Length: > 0 } f ? f : "yaml";
        string jobId;
        JobSpec spec;
        try
        {
            spec = JobSpecReader.Parse(request.SpecText, format, source);
            JobSpecValidator.Validate(spec, source);
            jobId = request.JobId is { Length: > 0 } id ? id : spec.Name;
            if (!JobSpecValidator.IsJobId(jobId)) throw new RunSpecException(source, "job_id", JobSpecValidator.JobIdProblem(jobId));
            JobOutputs.Resolve(spec.Out, jobId, options.Value.DataDirectory, source);
        }
        catch (RunSpecException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        var outcome = await Job(jobId).Submit(new JobSubmission(JobSpecReader.ToJson(spec), source));
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
        if (string.IsNullOrEmpty(jobId)) throw new RpcException(new Status(StatusCode.InvalidArgument, "job_id is required"));
        if (!JobSpecValidator.IsJobId(jobId)) throw new RpcException(new Status(StatusCode.InvalidArgument, "job_id " + JobSpecValidator.JobIdProblem(jobId)));
        return grains.GetGrain<IJobGrain>(jobId);
    }

    static RpcException NotFound(string jobId) => new(new Status(StatusCode.NotFound, $"job '{jobId}' not found"));
}
