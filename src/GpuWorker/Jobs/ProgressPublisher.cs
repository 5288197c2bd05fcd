using Jetpack.Application.Training;
using Jetpack.GpuWorker.Telemetry;
using Jetpack.Model.Moe;
using Jetpack.Protocol.Wire;

namespace Jetpack.GpuWorker.Jobs;

/// <summary>
/// A rank's observer of its <see cref="TrainingLoop"/>: every step becomes a <see cref="Progress"/>
/// message (with the step's evaluation, the same numbers on every rank) for WatchProgress, and
/// the rank's Prometheus metrics (step, routing statistics of each MoE layer, checkpoints).
/// </summary>
public sealed class ProgressPublisher(string jobId, int rank, WorkerMetrics metrics, IReadOnlyList<SpheroMoE> routers, Action<Progress> publish)
    : ITrainingObserver
{
    public void OnCheckpoint(long step, string directory) => metrics.RecordCheckpoint(jobId);

    public void OnStep(StepReport r)
    {
        metrics.RecordStep(jobId, r.Step, r.Loss, r.Seconds, r.Images);
        metrics.RecordData(jobId, r.DataWaitSeconds, r.ImagesRead, r.BadFiles);
        foreach (var m in routers)
            if (m.LastStatistics is { } stats) metrics.RecordRouting(jobId, stats);
        publish(r.ToProgress(jobId, rank));
    }
}
