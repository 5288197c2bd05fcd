using System.Diagnostics.Metrics;
using Jetpack.Model.Moe;
using Jetpack.Protocol.Telemetry;

namespace Jetpack.GpuWorker.Telemetry;

/// <summary>
/// A worker's instruments (names, units and labels from <see cref="MetricNames"/>; DESIGN.md
/// "Telemetry"), recorded where the work happens: the training loop (<see cref="RecordStep"/>), the
/// all-to-all (<see cref="RecordAllToAll"/>), the ring all-reduce (<see cref="RecordAllReduce"/>) and
/// the router's per-layer statistics (<see cref="RecordRouting"/>). Labels stay bounded: job_id, rank,
/// layer. One instance per process; the Prometheus exporter reads <see cref="MetricNames.WorkerMeter"/>.
/// </summary>
public sealed class WorkerMetrics : IDisposable
{
    readonly Meter meter;
    readonly Func<int> rank;
    readonly Gauge<double> loss, imagesPerSecond, dispatchMax, dispatchMean, combineEntropy;
    readonly Gauge<long> step, imagesRead, badFiles;
    readonly Histogram<double> dataWait, stepDuration, allToAllDuration, allReduceDuration;
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
        dataWait = meter.CreateHistogram<double>(MetricNames.DataWait, MetricNames.Units.Seconds, "how long a step waited for its batches");
        imagesRead = meter.CreateGauge<long>(MetricNames.DataImagesRead, description: "images this rank has read for training (its part of each epoch)");
        badFiles = meter.CreateGauge<long>(MetricNames.DataBadFiles, description: "undecodable files this rank has met (skipped)");
        checkpoints = meter.CreateCounter<long>(MetricNames.CheckpointsWritten, description: "training checkpoints written");
        allToAllBytes = meter.CreateCounter<long>(MetricNames.AllToAllBytes, MetricNames.Units.Bytes, "token-slot bytes sent to other ranks by the all-to-all");
        allToAllDuration = meter.CreateHistogram<double>(MetricNames.AllToAllDuration, MetricNames.Units.Seconds, "one all-to-all exchange (forward or backward)");
        allReduceBytes = meter.CreateCounter<long>(MetricNames.AllReduceBytes, MetricNames.Units.Bytes, "gradient bytes sent by the ring all-reduce");
        allReduceDuration = meter.CreateHistogram<double>(MetricNames.AllReduceDuration, MetricNames.Units.Seconds, "one ring all-reduce of the replicated gradients");
        dispatchMax = meter.CreateGauge<double>(MetricNames.SlotDispatchMassMax, description: "largest per-token dispatch mass in the layer's last forward");
        dispatchMean = meter.CreateGauge<double>(MetricNames.SlotDispatchMassMean, description: "mean per-token dispatch mass (slots/tokens)");
        combineEntropy = meter.CreateGauge<double>(MetricNames.CombineEntropy, description: "mean entropy of the combine weights (nats)");
    }

    KeyValuePair<string, object?> Job(string jobId) => new(MetricNames.Labels.Job, jobId);
    KeyValuePair<string, object?> Rank => new(MetricNames.Labels.Rank, rank());
    static KeyValuePair<string, object?> Layer(int layer) => new(MetricNames.Labels.Layer, layer);

    public void RecordStep(string jobId, long stepNumber, double stepLoss, double seconds, long images)
    {
        loss.Record(stepLoss, Job(jobId), Rank);
        step.Record(stepNumber, Job(jobId), Rank);
        stepDuration.Record(seconds, Job(jobId), Rank);
        if (seconds > 0) imagesPerSecond.Record(images / seconds, Job(jobId), Rank);
    }

    public void RecordData(string jobId, double waitSeconds, long read, int bad)
    {
        dataWait.Record(waitSeconds, Job(jobId), Rank);
        imagesRead.Record(read, Job(jobId), Rank);
        badFiles.Record(bad, Job(jobId), Rank);
    }

    public void RecordCheckpoint(string jobId) => checkpoints.Add(1, Job(jobId), Rank);

    public void RecordAllToAll(string jobId, int layer, long bytes, double seconds)
    {
        allToAllBytes.Add(bytes, Job(jobId), Rank, Layer(layer));
        allToAllDuration.Record(seconds, Job(jobId), Rank, Layer(layer));
    }

    public void RecordAllReduce(string jobId, long bytes, double seconds)
    {
        allReduceBytes.Add(bytes, Job(jobId), Rank);
        allReduceDuration.Record(seconds, Job(jobId), Rank);
    }

    public void RecordRouting(string jobId, RoutingStatistics s)
    {
        dispatchMax.Record(s.DispatchMassMax, Job(jobId), Rank, Layer(s.Layer));
        dispatchMean.Record(s.DispatchMassMean, Job(jobId), Rank, Layer(s.Layer));
        combineEntropy.Record(s.CombineEntropy, Job(jobId), Rank, Layer(s.Layer));
    }

    public void Dispose() => meter.Dispose();
}
