using Jetpack.Model.Training;
using Jetpack.Protocol.Wire;

namespace Jetpack.Application.Training;

/// <summary>A step as the workers' <see cref="Progress"/> messages carry it (worker_control.proto), both ways.</summary>
public static class ProgressMessages
{
    public static Progress ToProgress(this StepReport r, string jobId, int rank)
    {
        var p = new Progress
        {
            JobId = jobId, Rank = rank, Step = r.Step, Loss = r.Loss, LearningRate = r.LearningRate,
            GradNorm = double.IsFinite(r.GradNorm) ? r.GradNorm : 0, StepSeconds = r.Seconds,
            ExchangeSeconds = r.ExchangeSeconds ?? 0, AllReduceSeconds = r.AllReduceSeconds ?? 0,
            Evaluated = r.Eval is not null, EvalLoss = r.Eval?.Loss ?? 0, Top1 = r.Eval?.Top1 ?? 0, Top5 = r.Eval?.Top5 ?? 0, EvalImages = r.Eval?.Images ?? 0,
            DataWaitSeconds = r.DataWaitSeconds, ImagesRead = r.ImagesRead, BadFiles = r.BadFiles,
        };
        if (rank == 0)                                                     // the same merged numbers on every rank: one copy on the wire
            foreach (var s in r.Routing ?? [])
            {
                var layer = new RoutingLayer { Layer = s.Layer, Experts = s.Experts, MaxLoadShare = s.MaxLoadShare, LoadBalance = s.LoadBalance, CombineEntropy = s.CombineEntropy };
                layer.TopExperts.AddRange(s.Top.Select(t => t.Expert));
                layer.TopShares.AddRange(s.Top.Select(t => t.Share));
                p.Routing.Add(layer);
            }
        return p;
    }

    /// <summary>The step of a worker's progress; <paramref name="images"/> is the global batch (the images of one step over all ranks).</summary>
    public static StepReport ToStepReport(this Progress p, int images) =>
        new(p.Step, p.Loss, p.LearningRate, p.GradNorm, images, p.StepSeconds, p.ExchangeSeconds, p.AllReduceSeconds,
            p.Evaluated ? new EvalResult(p.EvalLoss, p.Top1, p.Top5, p.EvalImages) { Step = p.Step } : null, p.DataWaitSeconds, p.ImagesRead, p.BadFiles,
            p.Routing.Count == 0 ? null : p.Routing.Select(Summary).ToList());

    /// <summary>A layer's routing as rank 0 sent it; the top lists must pair up and stay within <see cref="RoutingSummary.TopExperts"/>.</summary>
    static RoutingSummary Summary(RoutingLayer l) =>
        l.TopExperts.Count != l.TopShares.Count || l.TopExperts.Count > RoutingSummary.TopExperts
            ? throw new InvalidDataException($"Progress.routing layer {l.Layer}: {l.TopExperts.Count} top_experts and {l.TopShares.Count} top_shares (expected equal counts ≤ {RoutingSummary.TopExperts})")
            : new(l.Layer, l.Experts, l.MaxLoadShare, l.LoadBalance, l.CombineEntropy, l.TopExperts.Zip(l.TopShares).ToList());
}
