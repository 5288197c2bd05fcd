using System.Diagnostics;
using System.Diagnostics.Metrics;
using Jetpack.Model.Moe;
using Jetpack.Protocol.Control;
using Jetpack.Protocol.Telemetry;

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
    readonly Gauge<double> loss, imagesPerSecond, dispatchMax, dispatchMean, combineEntropy, loadMaxShare, loadBalance;
    readonly Gauge<long> step, imagesRead, badFiles, shardsRead;
    readonly Histogram<double> dataWait, stepDuration, allToAllDuration, allReduceDuration, expertLoad;
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
        shardsRead = meter.CreateGauge<long>(MetricNames.DataShardsRead, description: "tar shards this rank has read training images from (its own: shard i mod W = rank)");
        badFiles = meter.CreateGauge<long>(MetricNames.DataBadFiles, description: "undecodable files this rank has met (skipped)");
        checkpoints = meter.CreateCounter<long>(MetricNames.CheckpointsWritten, description: "training checkpoints written");
        allToAllBytes = meter.CreateCounter<long>(MetricNames.AllToAllBytes, MetricNames.Units.Bytes, "token-slot bytes sent to other ranks by the all-to-all");
        allToAllDuration = meter.CreateHistogram<double>(MetricNames.AllToAllDuration, MetricNames.Units.Seconds, "one all-to-all exchange (forward or backward)");
        allReduceBytes = meter.CreateCounter<long>(MetricNames.AllReduceBytes, MetricNames.Units.Bytes, "gradient bytes sent by the ring all-reduce");
        allReduceDuration = meter.CreateHistogram<double>(MetricNames.AllReduceDuration, MetricNames.Units.Seconds, "one ring all-reduce of the replicated gradients");
        dispatchMax = meter.CreateGauge<double>(MetricNames.SlotDispatchMassMax, description: "largest per-token dispatch mass in the layer's last forward");
        dispatchMean = meter.CreateGauge<double>(MetricNames.SlotDispatchMassMean, description: "mean per-token dispatch mass (slots/tokens)");
        combineEntropy = meter.CreateGauge<double>(MetricNames.CombineEntropy, description: "mean entropy of the combine weights (nats)");
        expertLoad = meter.CreateHistogram(MetricNames.ExpertLoadRatio, unit: null, description: "each expert's load relative to a balanced layer (E × its share of the combine mass)",
                                           tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = MetricNames.ExpertLoadBuckets });
        loadMaxShare = meter.CreateGauge<double>(MetricNames.ExpertLoadMaxShare, description: "the busiest expert's share of the layer's combine mass");
        loadBalance = meter.CreateGauge<double>(MetricNames.ExpertLoadBalance, description: "expert load entropy / log E (1 = balanced)");
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

    public void RecordData(string runId, double waitSeconds, long read, int bad)
    {
        dataWait.Record(waitSeconds, Run(runId));
        imagesRead.Record(read, Run(runId));
        badFiles.Record(bad, Run(runId));
    }

    public void RecordShards(string runId, int read) => shardsRead.Record(read, Run(runId));

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
        if (s.ExpertLoad.Count == 0) return;
        // One observation per expert into fixed buckets: bounded series at any E (no expert-id label).
        var tags = Run(runId, s.Layer);
        int experts = s.ExpertLoad.Count;
        foreach (var share in s.ExpertLoad) expertLoad.Record(share * experts, tags);
        loadMaxShare.Record(s.MaxLoadShare, tags);
        loadBalance.Record(s.LoadBalance, tags);
    }

    public void Dispose() => meter.Dispose();
}
