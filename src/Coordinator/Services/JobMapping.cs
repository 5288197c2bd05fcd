using Jetpack.Coordinator.Grains.Contracts;
using Proto = Jetpack.Protocol.Jobs;

namespace Jetpack.Coordinator.Services;

/// <summary>Domain ⇄ wire, at the edge only.</summary>
public static class JobMapping
{
    public static Proto.JobStatus ToProto(this JobSnapshot s)
    {
        var status = new Proto.JobStatus
        {
            JobId = s.JobId, Name = s.Name, Model = s.Model, Phase = (Proto.JobPhase)(int)s.Phase, Message = s.Message,
            Step = s.Step, TotalSteps = s.TotalSteps, Loss = s.Loss, ImagesPerSecond = s.ImagesPerSecond,
            Recoveries = s.Recoveries, CheckpointKey = s.CheckpointKey, CheckpointPath = s.CheckpointPath,
            CheckpointReused = s.CheckpointReused, SubmittedUnixMs = s.SubmittedAt.ToUnixTimeMilliseconds(),
            UpdatedUnixMs = s.UpdatedAt.ToUnixTimeMilliseconds(), Version = s.Version,
            OutDirectory = s.OutDirectory, FinalModel = s.FinalModelPath, Placement = s.Placement,
            LastEval = s.LastEval is { } e ? new Proto.Evaluation { Step = e.Step, Loss = e.Loss, Top1 = e.Top1, Top5 = e.Top5, Images = e.Images } : null,
        };
        status.Workers.AddRange(s.Workers);
        return status;
    }
}
