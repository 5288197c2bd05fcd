namespace Jetpack.Protocol.Telemetry;

/// <summary>
/// Every metric name and label of Jetpack, in one place (DESIGN.md "Telemetry"). Instruments are
/// OpenTelemetry instruments on the meters below, exported by the Prometheus exporter at
/// <c>/metrics</c>. The names are already Prometheus-shaped: the unit suffix is part of the name
/// and the instrument's unit (<see cref="Units"/>) agrees with it, so the exporter leaves the name
/// as written; counters get the exporter's <c>_total</c> suffix (see <see cref="Exported"/>).
/// Labels are bounded (<see cref="Labels"/>): job_id, attempt, rank, layer, worker — never step or expert id.
/// </summary>
public static class MetricNames
{
    /// <summary>Meter of the coordinator process (jobs, workers, recycling).</summary>
    public const string CoordinatorMeter = "Jetpack.Coordinator";
    /// <summary>Meter of a GpuWorker process (training, data plane, routing statistics).</summary>
    public const string WorkerMeter = "Jetpack.GpuWorker";

    // ---- training (worker; labels job_id, rank) ----
    /// <summary>Gauge: training loss of the last step.</summary>
    public const string Loss = "jetpack_train_loss";
    /// <summary>Histogram, seconds: wall time of one optimizer step.</summary>
    public const string StepDuration = "jetpack_train_step_duration_seconds";
    /// <summary>Gauge: training throughput, images per second.</summary>
    public const string ImagesPerSecond = "jetpack_train_images_per_second";
    /// <summary>Histogram, seconds: how long a step waited for its batches from the prefetch queue (0 when they were ready).</summary>
    public const string DataWait = "jetpack_data_wait_seconds";
    /// <summary>Gauge: images this rank has read for training (its own part of each epoch; labels job_id, rank).</summary>
    public const string DataImagesRead = "jetpack_data_images_read";
    /// <summary>Gauge: tar shards this rank has read training images from (data.dataset: shards; its own, i mod W = rank; labels job_id, rank).</summary>
    public const string DataShardsRead = "jetpack_data_shards_read";
    /// <summary>Gauge: undecodable files this rank has met (skipped, logged, substituted).</summary>
    public const string DataBadFiles = "jetpack_data_bad_files";
    /// <summary>Counter: training checkpoints written (label job_id).</summary>
    public const string CheckpointsWritten = "jetpack_checkpoints_written";

    // ---- data plane (worker; labels job_id, rank, and layer for all-to-all) ----
    /// <summary>Counter, bytes: token-slot bytes sent by the all-to-all (DESIGN.md step 2).</summary>
    public const string AllToAllBytes = "jetpack_all_to_all_bytes";
    /// <summary>Histogram, seconds: one all-to-all exchange (forward or backward).</summary>
    public const string AllToAllDuration = "jetpack_all_to_all_duration_seconds";
    /// <summary>Counter, bytes: gradient bytes sent by the ring all-reduce (DESIGN.md step 4).</summary>
    public const string AllReduceBytes = "jetpack_all_reduce_bytes";
    /// <summary>Histogram, seconds: one ring all-reduce of the replicated gradients.</summary>
    public const string AllReduceDuration = "jetpack_all_reduce_duration_seconds";

    // ---- routing statistics (worker; labels job_id, layer) ----
    /// <summary>Gauge: the largest dispatch mass of a token, Σ_j D[b, n, j], in a layer's last forward. Dispatch is a
    /// softmax over tokens, so each slot receives mass 1 per image; the imbalance shows on the token side
    /// (a token that dominates many slots). See Jetpack.Model.Moe.RoutingStatistics.</summary>
    public const string SlotDispatchMassMax = "jetpack_moe_slot_dispatch_mass_max";
    /// <summary>Gauge: the mean dispatch mass per token in a layer (slots / tokens by construction: the reference for the max).</summary>
    public const string SlotDispatchMassMean = "jetpack_moe_slot_dispatch_mass_mean";
    /// <summary>Gauge: mean entropy of the combine weights in a layer (nats).</summary>
    public const string CombineEntropy = "jetpack_moe_combine_entropy";

    /// <summary>Histogram (no unit): each expert's load relative to a balanced layer, E·L[e], where L[e] is the expert's share of
    /// the layer's combine mass (1 = its fair share; see Jetpack.Model.Moe.RoutingStatistics). One observation per expert
    /// per recorded forward, into the fixed <see cref="ExpertLoadBuckets"/>: the series count is bounded at any expert
    /// count (issue 19: 1,000+ experts must not become 1,000+ label values). The busiest expert ids go to metrics.jsonl.</summary>
    public const string ExpertLoadRatio = "jetpack_moe_expert_load_ratio";
    /// <summary>Gauge: the busiest expert's share of a layer's combine mass (1/E when balanced).</summary>
    public const string ExpertLoadMaxShare = "jetpack_moe_expert_load_max_share";
    /// <summary>Gauge: entropy of a layer's expert load divided by log E (1 = balanced, 0 = one expert takes all).</summary>
    public const string ExpertLoadBalance = "jetpack_moe_expert_load_balance";
    /// <summary>Bucket bounds of <see cref="ExpertLoadRatio"/>: 0 (an unused expert) up to 16× the fair share.</summary>
    public static readonly IReadOnlyList<double> ExpertLoadBuckets = [0, 0.25, 0.5, 0.75, 0.9, 1.1, 1.5, 2, 4, 8, 16];

    /// <summary>Gauge: the step a worker's job has reached (labels job_id, rank).</summary>
    public const string TrainStep = "jetpack_train_step";

    // ---- coordinator ----
    /// <summary>Gauge: a job's phase as its number (<see cref="JobPhaseValues"/>), label job_id.</summary>
    public const string JobPhase = "jetpack_job_phase";
    /// <summary>Gauge: live workers (heartbeat younger than the timeout).</summary>
    public const string WorkersUp = "jetpack_workers_up";
    /// <summary>Gauge: 1 while a registered worker is live, 0 once the coordinator holds it dead (label worker):
    /// the coordinator's own verdict, so alerts need not know its heartbeat timeout.</summary>
    public const string WorkerUp = "jetpack_worker_up";
    /// <summary>Gauge, seconds: age of each registered worker's last heartbeat, label worker.</summary>
    public const string WorkerHeartbeatAge = "jetpack_worker_heartbeat_age_seconds";
    /// <summary>Counter: recoveries after a worker loss, label job_id.</summary>
    public const string Recoveries = "jetpack_recoveries";
    /// <summary>Counter: elastic growths onto more workers at a checkpoint step (issue 20 fault 7), label job_id.</summary>
    public const string Growths = "jetpack_growths";
    /// <summary>Counter: recyclings run (a reused checkpoint is not counted).</summary>
    public const string Recyclings = "jetpack_recyclings";

    /// <summary>The values of <see cref="JobPhase"/> (equal to the JobPhase enum of jobs.proto).</summary>
    public const string JobPhaseValues = "1 pending, 2 recycling, 3 scattering, 4 training, 5 recovering, 6 completed, 7 failed, 8 cancelled";

    /// <summary>Label names (bounded cardinality).</summary>
    public static class Labels
    {
        /// <summary>The Jetpack job id. Not "job": Prometheus owns that label (the scrape job) and would
        /// rename ours to exported_job.</summary>
        public const string Job = "job_id";
        /// <summary>The attempt of a job's run on the workers (1, 2, … one per scatter; bounded by the job's recoveries).</summary>
        public const string Attempt = "attempt";
        public const string Rank = "rank";
        public const string Layer = "layer";
        /// <summary>Worker id; bounded by the pool size.</summary>
        public const string Worker = "worker";
    }

    /// <summary>Instrument units that agree with the name suffixes above.</summary>
    public static class Units
    {
        public const string Seconds = "s";
        public const string Bytes = "By";
    }

    /// <summary>The name Prometheus shows for a counter (the exporter appends <c>_total</c>).</summary>
    public static string Exported(string counter) => counter + "_total";
}
