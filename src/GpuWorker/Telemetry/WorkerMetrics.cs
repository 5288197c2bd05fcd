using System.Diagnostics.Metrics;
using Jetpack.Model.Moe;
using Jetpack.Protocol.Control;
using Jetpack.Protocol.Telemetry;
using System.Diagnostics;

namespace Jetpack.GpuWorker.Telemetry;

/// <summary>
/// A worker's instruments (names, units and labels from <see cref="MetricNames"/>; DESIGN.md
/// "Telemetry"), recorded where the work happens: the training loop (<see cref="RecordStep"/>), the
/// all-to-all (<see cref="RecordAllToAll"/>), the ring all-reduce (<see cref="RecordAllReduce"/>) and
/// the router's per-layer statistics (<see cref="RecordRouting"/>). Labels stay bounded: job_id, attempt,
/// rank, layer. One instance per process; the Prometheus exporter reads <see cref="MetricNames.WorkerMeter"/>.
/// </summary>
public sealed class WorkerMetrics : IDisposable
{
    readonly Meter meter;
    readonly Func<int> rank;
    readonly Gauge<double> loss, imagesPerSecond, dispatchMax, dispatchMean, combineEntropy;
    readonly Gauge<long> step;
    readonly Histogram<double> stepDuration, allToAllDuration, allReduceDuration;
    readonly Counter<long> allToAllBytes, allReduceBytes, checkpoints;

    /// <param name="rank">this worker's rank in its current run (read at every record)</param>
    public WorkerMetrics(Func<int> rank)
    {
        this.rank = rank;
        meter = new Meter(MetricNames.WorkerMeter);
        loss = meter.CreateGauge<double>(MetricNames.Loss, description: "training loss of the last step");
        step = meter.CreateGauge<long>(MetricNames.TrainStep, description: "the step the job has reached");
        imagesPerSecond = meter.CreateGauge<double>(MetricNames.ImagesPerSecond, description: "images per second of this rank in the last step");
        stepDuration = meter.CreateHistogram<double>(MetricNames.StepDuration, MetricNames.Units.Seconds, "wall time of one optimizer step");
        checkpoints = meter.CreateCounter<long>(MetricNames.CheckpointsWritten, description: "training checkpoints written");
        allToAllBytes = meter.CreateCounter<long>(MetricNames.AllToAllBytes, MetricNames.Units.Bytes, "token-slot bytes sent to other ranks by the all-to-all");
        allToAllDuration = meter.CreateHistogram<double>(MetricNames.AllToAllDuration, MetricNames.Units.Seconds, "one all-to-all exchange (forward or backward)");
        allReduceBytes = meter.CreateCounter<long>(MetricNames.AllReduceBytes, MetricNames.Units.Bytes, "gradient bytes sent by the ring all-reduce");
        allReduceDuration = meter.CreateHistogram<double>(MetricNames.AllReduceDuration, MetricNames.Units.Seconds, "one ring all-reduce of the replicated gradients");
        dispatchMax = meter.CreateGauge<double>(MetricNames.SlotDispatchMassMax, description: "largest per-token dispatch mass in the layer's last forward");
        dispatchMean = meter.CreateGauge<double>(MetricNames.SlotDispatchMassMean, description: "mean per-token dispatch mass (slots/tokens)");
        combineEntropy = meter.CreateGauge<double>(MetricNames.CombineEntropy, description: "mean entropy of the combine weights (nats)");
    }

    /// <summary>
    /// The labels of a run: the plain job id (what the coordinator's <c>jetpack_job_phase</c> and the
    /// dashboard's <c>$job</c> use) and the attempt as a label of its own, from the run id
    /// <c>job#attempt</c> (<see cref="RunId"/>); then the rank.
    /// </summary>
    TagList Run(string runId) => new()
    {
        { MetricNames.Labels.Job, RunId.JobOf(runId) },
        { MetricNames.Labels.Attempt, RunId.AttemptOf(runId) },
        { MetricNames.Labels.Rank, rank() },
    };

    TagList Run(string runId, int layer)
    {
        var tags = Run(runId);
        tags.Add(MetricNames.Labels.Layer, layer);
        return tags;
    }

    public void RecordStep(string runId, long stepNumber, double stepLoss, double seconds, long images)
    {
        loss.Record(stepLoss, Run(runId));
        step.Record(stepNumber, Run(runId));
        stepDuration.Record(seconds, Run(runId));
        if (seconds > 0) imagesPerSecond.Record(images / seconds, Run(runId));
    }

    public void RecordCheckpoint(string runId) => checkpoints.Add(1, Run(runId));

    public void RecordAllToAll(string runId, int layer, long bytes, double seconds)
    {
        allToAllBytes.Add(bytes, Run(runId, layer));
        allToAllDuration.Record(seconds, Run(runId, layer));
    }

    public void RecordAllReduce(string runId, long bytes, double seconds)
    {
        allReduceBytes.Add(bytes, Run(runId));
        allReduceDuration.Record(seconds, Run(runId));
    }

    public void RecordRouting(string runId, RoutingStatistics s)
    {
        dispatchMax.Record(s.DispatchMassMax, Run(runId, s.Layer));
        dispatchMean.Record(s.DispatchMassMean, Run(runId, s.Layer));
        combineEntropy.Record(s.CombineEntropy, Run(runId, s.Layer));
    }

    public void Dispose() => meter.Dispose();
}
