using System.Collections.Concurrent;
using System.Text.Json;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Jetpack.Application.Training;
using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Protocol.Channels;
using Jetpack.Application.Runs;
using Jetpack.WorkerCluster;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Distributed;
using Jetpack.Model.Models;
using Jetpack.Model.Training;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Control;
using Jetpack.Protocol.Security;
using Jetpack.Protocol.Wire;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace Jetpack.Coordinator.Training;

/// <summary>
/// The training driver over WorkerControl (DESIGN.md: "gRPC (WorkerControl: load shard, start,
/// checkpoint, stop; progress back)"). It runs on the JobGrain's background tasks, never in a grain.
///
/// Scatter: JoinJob on every rank (run id <c>job#attempt</c>, rank, world, peers) — all ranks know
/// the run before any starts a step; then LoadShard of each rank's part of the recycled checkpoint
/// or, on a recovery, of the newest complete training checkpoint of the job
/// (<see cref="CheckpointLocator"/>: parameters and AdamW moments, re-sliced for the new world size
/// by <see cref="TrainingCheckpoint.ReadRank"/>, every file hashed against its manifest first):
/// replicated tensors whole, expert tensors as that rank's rows, read one tensor at a time and sent
/// with its SHA-256, which the worker verifies.
///
/// Train: StartJob on every rank with the job's spec (model, data, recipe, checkpoint directory and
/// period — each rank checkpoints after the same steps by construction); WatchProgress from every
/// rank, rank 0's progress (with the workers' periodic evaluations) to the grain and to
/// <c>metrics.jsonl</c> (<see cref="MetricsLog"/>). A rank that fails or whose
/// stream breaks ends the attempt: every rank is probed (Health, a few seconds); a rank that does
/// not answer, or answers from another process, is a <see cref="WorkerLostException"/> (the job
/// recovers), otherwise the failure is the job's, naming the rank and worker.
///
/// Stop (an elastic growth, JobGrain.Growth.cs): StopJob after a checkpoint step on every rank; the
/// ranks save that checkpoint and end stopped, and TrainAsync returns the step instead of completing.
/// </summary>
public sealed class GrpcTrainingDriver(IOptions<CoordinatorOptions> options, ILogger<GrpcTrainingDriver> log) : ITrainingDriver, IDisposable
{
    /// <summary>How long a Health probe may take before the worker counts as gone.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(3);

    readonly ConcurrentDictionary<string, GrpcChannel> channels = new();

    /// <summary>
    /// The run's layout on its workers (parallel.expert_parallel; checked to divide workers at submit).
    /// A recovery onto a world that G does not divide falls back to G = world: the checkpoint loads
    /// into any layout, so only the split of the work changes.
    /// </summary>
    static ParallelLayout LayoutOf(TrainingRun run, int world) =>
        run.Spec.Parallel.ExpertParallel is { } g && g >= 1 && world % g == 0 ? new ParallelLayout(world, g) : ParallelLayout.Flat(world);

    public static string CheckpointDirectory(TrainingRun run) => Path.GetFullPath(Path.Combine(run.OutDirectory, "checkpoint"));
    public const string MetricsFile = MetricsLog.FileName;
    public const string AttemptsFile = "attempts.jsonl";

    public async Task<ScatterPlan> ScatterAsync(TrainingRun run, CancellationToken cancel)
    {
        var workers = Ranks(run);
        var cluster = Cluster(workers);
        int world = workers.Count;
        string runId = RunId.Of(run.JobId, run.Attempt);
        var model = run.Spec.ResolveModel();
        var layout = LayoutOf(run, world);
        var pids = await Call(run, cluster, null, c => c.JoinAsync(runId, workers.Select(w => Authority(w.Endpoint)).ToList(), ClusterClient.StartTimeout, cancel, (r, reply) =>
        {
            if (reply.AbortedRunId.Length > 0) log.LogInformation("run {Run}: worker {Worker} left run {Old} for it", runId, r.Name, reply.AbortedRunId);
        }));

        CheckpointLocator.Found? resume = run.Resume ? await Task.Run(() => CheckpointLocator.Latest(CheckpointDirectory(run)), cancel) : null;
        if (resume is null)
        {
            using (var reader = SafetensorsReader.Open(run.CheckpointPath))
                if (reader.Metadata.GetValueOrDefault(ModelCheckpoint.VariantKey) is { } variant && variant != model.Variant)
                    throw new InvalidDataException($"{run.CheckpointPath}: holds a {variant} checkpoint, the job trains {model.Variant}");
        }
        else
        {
            log.LogInformation("run {Run}: resuming at step {Step} from {Dir} (saved by {Saved} worker(s)) on {World}", runId, resume.Manifest.Step, resume.Directory, resume.Manifest.WorldSize, world);
            await ReplayMissedSteps(run, cluster, resume.Manifest.Step, cancel);      // before StartJob: until then the workers keep the earlier run's progress
        }
        int g = layout.ExpertParallel;
        var replies = await Call(run, cluster, pids, c => c.ScatterAsync(rank => resume is null
            ? ModelCheckpoint.ReadRank(run.CheckpointPath, model, g, layout.Position(rank))
            : TrainingCheckpoint.ReadRank(resume.Directory, model, g, layout.Position(rank)), cancel));      // re-sliced for this layout
        for (int r = 0; r < world; r++)
            log.LogInformation("run {Run}: rank {Rank} ({Worker}) loaded {Tensors} tensors, {MB:F1} MB", runId, r, workers[r].WorkerId, replies[r].Tensors, replies[r].Bytes / 1e6);
        var resumed = resume is null ? null : new ScatteredResume(resume.Manifest.Step, resume.Manifest.OptimizerSteps, resume.Manifest.Data, resume.Directory);
        return new ScatterPlan(runId, pids, g, JsonSerializer.Serialize(model, ModelSpec.Json), resumed is null ? null : JsonSerializer.Serialize(resumed));
    }

    public async Task<long?> TrainAsync(TrainingRun run, ScatterPlan plan, IProgress<TrainingProgress> progress, CancellationToken cancel)
    {
        var workers = Ranks(run);
        var cluster = Cluster(workers);
        var resume = plan.ResumeJson is null ? null : JsonSerializer.Deserialize<ScatteredResume>(plan.ResumeJson);
        var spec = new WorkerJobSpec(run.Spec)
        {
            ModelSpecJson = plan.ModelSpecJson,                                   // deterministic switch applied
            Init = null, Out = null,                                              // the ranks start from the scattered tensors and write only the checkpoint
            InitFromLoadedShard = resume is null,
            ResumeFromLoadedShard = resume,
            Parallel = new RunParallel { ExpertParallel = plan.ExpertParallel },
            CheckpointDir = CheckpointDirectory(run),
        };
        long start = await Call(run, cluster, plan.Pids, c => c.StartAsync(new StartJobRequest { JobId = plan.RunId, SpecJson = spec.ToJson() }, ClusterClient.StartTimeout, cancel));
        using var metrics = OpenLogs(run, plan, resume, start);

        void OnRankZero(Progress p)
        {
            metrics.Write(p.ToStepReport(run.Spec.Recipe.GlobalBatch));
            progress.Report(ProgressOf(p, run.Spec));
        }
        try
        {
            var outcome = await cluster.WatchAsync(plan.RunId, start, OnRankZero, untilFirstFailure: true, cancel);
            if (outcome.Ranks.FirstOrDefault(r => r.End is not (RunEnd.Completed or RunEnd.Stopped or RunEnd.Unspecified)) is { } failed)
                throw await Classify(run, cluster, plan.Pids, $"rank {failed.Rank} (worker '{workers[failed.Rank].WorkerId}'): {failed.End.ToString().ToLowerInvariant()}: {failed.Reason}");
            if (outcome.Ranks.Any(r => r.End == RunEnd.Stopped))
            {
                // a StopAfterAsync of this run (elastic growth): every rank stopped after the same step
                var steps = outcome.Ranks.Select(r => r.End == RunEnd.Stopped && r.Progress.Count > 0 ? r.Progress[^1].Step : -1).Distinct().ToList();
                if (steps.Count != 1 || steps[0] < 0)
                    throw new InvalidOperationException($"run {plan.RunId}: the ranks did not all stop after one step: {string.Join("; ", outcome.Ranks)}");
                log.LogInformation("run {Run}: every rank stopped after step {Step} on request", plan.RunId, steps[0]);
                return steps[0];
            }
            log.LogInformation("run {Run}: every rank completed step {Steps}", plan.RunId, run.Spec.Recipe.Steps);
            return null;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            // cancelled or recovering: stop this run's ranks (the run id keeps a late stop off any later run)
            _ = cluster.StopAsync(plan.RunId, "cancelled by the coordinator", ProbeTimeout);
            throw;
        }
    }

    public async Task StopAfterAsync(TrainingRun run, long step, string reason, CancellationToken cancel)
    {
        string runId = RunId.Of(run.JobId, run.Attempt);
        try { await Cluster(Ranks(run)).StopAfterAsync(runId, step, reason, ClusterClient.StartTimeout, cancel); }
        catch (RankCallException e) { throw new InvalidOperationException($"run {runId}: stop after step {step} refused: {e.Message}", e); }
        log.LogInformation("run {Run}: every rank stops after step {Step}: {Reason}", runId, step, reason);
    }

    public Task<string> FinishAsync(TrainingRun run, EvalResult? lastEval, CancellationToken cancel)
    {
        string path = Path.Combine(Path.GetFullPath(run.OutDirectory), FinalModel.FileName);
        return Task.Run(() =>
        {
            // An attempt that resumed at the last step (the earlier one finished while the coordinator was away)
            // reports no evaluation itself: the final one is metrics.jsonl's, replayed from the earlier attempt.
            lastEval ??= MetricsLog.LastEvaluation(Path.Combine(run.OutDirectory, MetricsFile)) is { } logged && logged.Step == run.Spec.Recipe.Steps ? logged : null;
            try { FinalModel.Write(CheckpointDirectory(run), path, run.JobId, run.Spec.Recipe.Steps, lastEval); }
            catch (Exception e) when (e is InvalidDataException or IOException or CheckpointMismatchException or SafetensorsFormatException)
            {
                throw new InvalidOperationException($"final model {path}: {e.Message}", e);
            }
            log.LogInformation("job {Job}: wrote {Path}", run.JobId, path);
            return path;
        }, cancel);
    }

    /// <summary>Rank 0's Progress as the grain sees it: loss, throughput and the step's evaluation, if it had one.</summary>
    public static TrainingProgress ProgressOf(Progress p, Jobs.JobSpec spec) =>
        new(p.Step, spec.Recipe.Steps, p.Loss, spec.Recipe.GlobalBatch / Math.Max(p.StepSeconds, 1e-9),
            p.Evaluated ? new EvalResult(p.EvalLoss, p.Top1, p.Top5, p.EvalImages) { Step = p.Step } : null);

    /// <summary>
    /// One every-rank call of the cluster; its first failure is classified: a rank that did not answer
    /// is a lost worker (probed first when <paramref name="pids"/> says who joined), any other refusal
    /// is the job's error naming the rank, the worker and the phase.
    /// </summary>
    async Task<T> Call<T>(TrainingRun run, ClusterClient cluster, int[]? pids, Func<ClusterClient, Task<T>> call)
    {
        try { return await call(cluster); }
        catch (RankCallException e)
        {
            var w = run.Workers.First(x => x.Rank == e.Rank.Rank);
            string what = $"{e.Phase} on rank {w.Rank} (worker '{w.WorkerId}' at {w.Endpoint}) failed: {e.Status}: {((RpcException)e.InnerException!).Status.Detail}";
            if (!e.Unreachable) throw new InvalidOperationException(what, e);
            if (pids is null) throw new WorkerLostException(w.WorkerId, what);
            throw await Classify(run, cluster, pids, what);
        }
    }

    /// <summary>
    /// After a failure: probes every rank (Health, <see cref="ProbeTimeout"/>). The first rank that
    /// does not answer, or answers from another process than the one that joined the run, is lost;
    /// if every rank answers, the failure is the job's own.
    /// </summary>
    async Task<Exception> Classify(TrainingRun run, ClusterClient cluster, int[] pids, string failure)
    {
        var workers = Ranks(run);
        var probes = await cluster.ProbeAsync(ProbeTimeout);
        var unreachable = new List<(int A, int B)>();
        for (int r = 0; r < workers.Count; r++)
        {
            var (reply, error) = probes[r];
            string? gone = error ?? (pids[r] != 0 && reply!.ProcessId != pids[r] ? $"answers from process {reply.ProcessId}, not {pids[r]} which joined the run (restarted)" : null);
            if (gone is not null)
            {
                var w = workers[r];
                log.LogWarning("job {Job} attempt {Attempt}: rank {Rank} (worker {Worker}) is gone: {Why}; after: {Failure}", run.JobId, run.Attempt, r, w.WorkerId, gone, failure);
                return new WorkerLostException(w.WorkerId, $"rank {r} (worker '{w.WorkerId}' at {w.Endpoint}) {gone}; the run ended with: {failure}");
            }
            unreachable.AddRange(reply!.UnreachableRanks.Where(x => x >= 0 && x < workers.Count).Select(x => (r, x)));
        }
        // Every rank answers us, but some data planes cannot reach each other: a partition between workers.
        if (PartitionException.MinimalDrop(unreachable) is { Count: > 0 } drop)
        {
            string pairs = string.Join(", ", unreachable.Select(e => $"{e.A}→{e.B}").Distinct());
            string dropped = string.Join(", ", drop.Select(r => $"rank {r} (worker '{workers[r].WorkerId}')"));
            log.LogWarning("job {Job} attempt {Attempt}: partition between workers (unreachable {Pairs}); dropping {Dropped}", run.JobId, run.Attempt, pairs, dropped);
            return new PartitionException(drop.Select(r => workers[r].WorkerId).ToList(),
                $"partition: ranks cannot reach each other ({pairs}) while all answer the coordinator; dropped {dropped}; the run ended with: {failure}");
        }
        return new InvalidOperationException(failure);
    }

    /// <summary>How long a resumed attempt waits for the workers to hand over the earlier attempt's progress.</summary>
    public static readonly TimeSpan ReplayTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Before a resumed attempt starts: the steps between metrics.jsonl's last line and the checkpoint it
    /// resumes from were trained by the earlier attempt while the coordinator could not follow them (it was
    /// cut off from the workers, or it restarted). Its workers still hold that attempt's progress until they
    /// start the new one; it is written into metrics.jsonl (with the earlier attempt's number and world), so
    /// the file holds every step. Steps that none of the new attempt's workers holds (they all joined since)
    /// stay missing, with a warning.
    /// </summary>
    async Task ReplayMissedSteps(TrainingRun run, ClusterClient cluster, long resumeStep, CancellationToken cancel)
    {
        string metricsPath = Path.Combine(run.OutDirectory, MetricsFile);
        long logged = MetricsLog.LastStep(metricsPath);
        if (resumeStep <= logged || PreviousAttempt.Read(Path.Combine(run.OutDirectory, AttemptsFile)) is not { } earlier) return;
        var steps = await cluster.EarlierProgressAsync(earlier.Run, logged, resumeStep, ReplayTimeout, cancel);
        if (steps.Count > 0)
        {
            using var metrics = MetricsLog.Open(metricsPath, logged, workers: earlier.World, attempt: earlier.Attempt);
            foreach (var p in steps) metrics.Write(p.ToStepReport(run.Spec.Recipe.GlobalBatch));
        }
        long through = steps.Count > 0 ? steps[^1].Step : logged;
        if (through < resumeStep)
            log.LogWarning("job {Job}: steps {From}..{To} of run {Run} are missing from {File}: none of this attempt's workers still holds that run's progress",
                           run.JobId, through + 1, resumeStep, earlier.Run, MetricsFile);
        if (steps.Count > 0)
            log.LogInformation("job {Job}: {File}: steps {From}..{To} of run {Run} replayed from its workers (rank {Rank}'s progress; trained while the coordinator could not follow)",
                               run.JobId, MetricsFile, steps[0].Step, steps[^1].Step, earlier.Run, steps[0].Rank);
    }

    /// <summary>The last attempt attempts.jsonl records: its run id, attempt number and world size.</summary>
    sealed record PreviousAttempt(string Run, int Attempt, int World)
    {
        public static PreviousAttempt? Read(string path)
        {
            var line = File.Exists(path) ? File.ReadLines(path).LastOrDefault(l => l.Length > 0) : null;
            if (line is null) return null;
            var root = JsonDocument.Parse(line).RootElement;
            return new PreviousAttempt(root.GetProperty("run").GetString()!, root.GetProperty("attempt").GetInt32(), root.GetProperty("world").GetInt32());
        }
    }

    /// <summary>metrics.jsonl keeps the lines up to the start step (a resumed attempt rewrites what follows); attempts.jsonl gains one line per attempt.</summary>
    MetricsLog OpenLogs(TrainingRun run, ScatterPlan plan, ScatteredResume? resume, long start)
    {
        Directory.CreateDirectory(run.OutDirectory);
        var model = JsonSerializer.Deserialize<ModelSpec>(plan.ModelSpecJson, ModelSpec.Json)!;
        File.AppendAllText(Path.Combine(run.OutDirectory, AttemptsFile), JsonSerializer.Serialize(new
        {
            run = plan.RunId, attempt = run.Attempt, cause = run.Cause, world = run.Workers.Count, workers = Ranks(run).Select(w => w.WorkerId).ToArray(),
            start_step = start, resumed_from = resume?.Source, resumed_step = resume?.Step,
            scattered_from = resume is null ? run.CheckpointPath : null, at = DateTimeOffset.UtcNow,
            expert_parallel = plan.ExpertParallel,
            placement = ExpertPlacement.Describe(model, new ParallelLayout(run.Workers.Count, plan.ExpertParallel)).Split('\n'),
        }) + "\n");
        return MetricsLog.Open(Path.Combine(run.OutDirectory, MetricsFile), start, workers: run.Workers.Count, attempt: run.Attempt);
    }

    static List<WorkerAssignment> Ranks(TrainingRun run)
    {
        var workers = run.Workers.OrderBy(w => w.Rank).ToList();
        if (workers.Count == 0 || workers.Select((w, i) => w.Rank == i).Any(ok => !ok))
            throw new ArgumentException($"job '{run.JobId}': ranks must be 0..n-1, got {string.Join(", ", workers.Select(w => w.Rank))}");
        return workers;
    }

    /// <summary>host:port of a worker's WorkerControl endpoint (also its data plane: one server per worker).</summary>
    static string Authority(string endpoint) =>
        Uri.TryCreate(endpoint, UriKind.Absolute, out var u) && u.Port > 0 ? $"{u.Host}:{u.Port}"
        : throw new ArgumentException($"worker endpoint '{endpoint}' is not http://host:port");

    /// <summary>The run's ranks as the cluster client sees them (a lost rank is classified by <see cref="Classify"/>, not described by the client).</summary>
    ClusterClient Cluster(IReadOnlyList<WorkerAssignment> workers) => new(workers.Select(w => new ClusterRank(w.Rank, w.WorkerId, Client(w))).ToList());

    WorkerControl.WorkerControlClient Client(WorkerAssignment w)
    {
        var token = options.Value.ClusterToken is { Length: > 0 } t ? new ClusterToken(t)
            : throw new InvalidOperationException("the coordinator has no cluster token (--token-file or JETPACK_CLUSTER_TOKEN): workers refuse every call without it");
        var channel = channels.GetOrAdd(w.Endpoint, e => WireChannels.Open(Authority(e), WireLimits.Default, options.Value.Tls, keepAlive: true));
        return new WorkerControl.WorkerControlClient(channel.Intercept(new ClusterTokenCallInterceptor(token)));
    }

    public void Dispose()
    {
        foreach (var c in channels.Values) c.Dispose();
    }
}
