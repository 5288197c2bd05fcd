using Jetpack.Application.Training;
using Jetpack.GpuWorker.Telemetry;
using Jetpack.Model.Data;
using Jetpack.Model.Moe;
using Jetpack.Protocol.Wire;

namespace Jetpack.GpuWorker.Jobs;

/// <summary>
/// A rank's observer of its <see cref="TrainingLoop"/>: every step becomes a <see cref="Progress"/>
/// message (with the step's evaluation, the same numbers on every rank) for WatchProgress, and
/// the rank's Prometheus metrics (step, routing statistics of each MoE layer, checkpoints).
/// </summary>
/// <param name="shards">the training shards when data.dataset is shards: how many of them this rank has read from goes to its metrics</param>
public sealed class ProgressPublisher(string jobId, int rank, WorkerMetrics metrics, IReadOnlyList<SpheroMoE> routers, Action<Progress> publish,
                                      ShardDataset? shards = null)
    : ITrainingObserver
{
    public void OnCheckpoint(long step, string directory) => metrics.RecordCheckpoint(jobId);

    public void OnStep(StepReport r)
    {
        metrics.RecordStep(jobId, r.Step, r.Loss, r.Seconds, r.Images);
        metrics.RecordData(jobId, r.DataWaitSeconds, r.ImagesRead, r.BadFiles);
        metrics.RecordShards(jobId, shards?.ShardsRead ?? 0);             // 0 for a dataset without shards: every worker panel has its series
        foreach (var m in routers)
            if (m.LastStatistics is { } stats) metrics.RecordRouting(jobId, stats);
        publish(r.ToProgress(jobId, rank));
    }
}
