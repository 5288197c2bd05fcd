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
/// </summary>
public sealed class GrpcTrainingDriver(IOptions<CoordinatorOptions> options, ILogger<GrpcTrainingDriver> log) : ITrainingDriver, IDisposable
{
    /// <summary>JoinJob and StartJob (which builds the model and opens the data on the worker).</summary>
    public static readonly TimeSpan CallTimeout = TimeSpan.FromMinutes(3);
    /// <summary>How long a Health probe may take before the worker counts as gone.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(3);

    readonly ConcurrentDictionary<string, GrpcChannel> channels = new();
    readonly ConcurrentDictionary<string, RunPlan> plans = new();

    /// <summary>What the scatter of one run decided, for its training: where it resumes and which processes joined.</summary>
    sealed record RunPlan(ModelSpec Model, string? ResumeFrom, long ResumeStep, int[] Pids, ScatteredResume? Resume);

    public static string CheckpointDirectory(TrainingRun run) => Path.GetFullPath(Path.Combine(run.OutDirectory, "checkpoint"));
    public const string MetricsFile = MetricsLog.FileName;
    public const string AttemptsFile = "attempts.jsonl";

    public async Task ScatterAsync(TrainingRun run, CancellationToken cancel)
    {
        var workers = Ranks(run);
        int world = workers.Count;
        string runId = RunId.Of(run.JobId, run.Attempt);
        var model = run.Spec.ResolveModel();
        var peers = workers.Select(w => Authority(w.Endpoint)).ToList();
        var pids = new int[world];
        await OnEveryRank(run, workers, pids, "JoinJob", async (w, client) =>
        {
            var join = new JoinJobRequest { RunId = runId, Rank = w.Rank, WorldSize = world };
            join.Peers.Add(peers);
            var reply = await client.JoinJobAsync(join, deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancel);
            pids[w.Rank] = reply.ProcessId;
            if (reply.AbortedRunId.Length > 0) log.LogInformation("run {Run}: worker {Worker} left run {Old} for it", runId, w.WorkerId, reply.AbortedRunId);
        }, cancel, probe: false);

        CheckpointLocator.Found? resume = run.Resume ? await Task.Run(() => CheckpointLocator.Latest(CheckpointDirectory(run)), cancel) : null;
        if (resume is null)
        {
            using (var reader = SafetensorsReader.Open(run.CheckpointPath))
                if (reader.Metadata.GetValueOrDefault(ModelCheckpoint.VariantKey) is { } variant && variant != model.Variant)
                    throw new InvalidDataException($"{run.CheckpointPath}: holds a {variant} checkpoint, the job trains {model.Variant}");
        }
        else log.LogInformation("run {Run}: resuming at step {Step} from {Dir} (saved by {Saved} worker(s)) on {World}", runId, resume.Manifest.Step, resume.Directory, resume.Manifest.WorldSize, world);
        await OnEveryRank(run, workers, pids, "LoadShard", async (w, client) =>
        {
            var part = resume is null ? Part(run.CheckpointPath, model, world, w.Rank)
                                      : TrainingCheckpoint.ReadRank(resume.Directory, model, world, w.Rank);   // re-sliced for this world
            var reply = await ShardSender.SendAsync(client, part, WireLimits.Default, cancel);
            log.LogInformation("run {Run}: rank {Rank} ({Worker}) loaded {Tensors} tensors, {MB:F1} MB", runId, w.Rank, w.WorkerId, reply.Tensors, reply.Bytes / 1e6);
        }, cancel, probe: true);
        plans[runId] = new RunPlan(model, resume?.Directory, resume?.Manifest.Step ?? 0, pids,
            resume is null ? null : new ScatteredResume(resume.Manifest.Step, resume.Manifest.OptimizerSteps, resume.Manifest.Data, resume.Directory));
    }

    /// <summary>One rank's part of a full model checkpoint, read a tensor at a time (each disposed once sent).</summary>
    static IEnumerable<KeyValuePair<string, Tensor>> Part(string path, ModelSpec model, int world, int rank)
    {
        using var reader = SafetensorsReader.Open(path);
        foreach (var name in reader.Names)
        {
            Tensor t;
            if (ExpertKeys.Classify(model, name) is { } ek)
            {
                var (start, count) = ek.Rows(ExpertRange.For(ek.Config, world, rank));
                t = reader.ReadRows(name, start, count);                               // only this rank's experts
            }
            else t = reader.ReadTensor(name);
            try { yield return new(name, t); }
            finally { t.Dispose(); }
        }
    }

    public async Task TrainAsync(TrainingRun run, IProgress<TrainingProgress> progress, CancellationToken cancel)
    {
        var workers = Ranks(run);
        string runId = RunId.Of(run.JobId, run.Attempt);
        if (!plans.TryRemove(runId, out var plan))
            throw new InvalidOperationException($"run '{runId}' was not scattered by this coordinator process");
        var spec = new WorkerJobSpec
        {
            Model = run.Spec.Model, ModelSpecJson = JsonSerializer.Serialize(plan.Model, ModelSpec.Json),   // deterministic switch applied
            InitFromLoadedShard = plan.Resume is null,
            ResumeFromLoadedShard = plan.Resume,
            Data = run.Spec.Data,
            Recipe = run.Spec.Recipe,
            EvalEvery = run.Spec.EvalEvery,
            CheckpointEvery = run.Spec.CheckpointEvery,
            CheckpointDir = CheckpointDirectory(run),
            Device = WorkerDevice(run.Spec),
        };
        var request = new StartJobRequest { JobId = runId, SpecJson = spec.ToJson() };
        var starts = new long[workers.Count];
        await OnEveryRank(run, workers, plan.Pids, "StartJob", async (w, client) =>
            starts[w.Rank] = (await client.StartJobAsync(request, deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancel)).StartStep, cancel, probe: true);
        if (starts.Distinct().Count() != 1)
            throw new InvalidOperationException($"run '{runId}': ranks start at different steps ({string.Join(", ", starts)})");
        long start = starts[0];
        using var metrics = OpenLogs(run, runId, plan, start);

        using var watching = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        void OnRankZero(Progress p)
        {
            var step = p.ToStepReport(run.Spec.Recipe.GlobalBatch);
            metrics.Write(step);
            progress.Report(ProgressOf(p, run.Spec));
        }
        var watches = workers.Select(w => Watch(run, w, runId, w.Rank == 0 ? OnRankZero : null, watching.Token)).ToList();
        try
        {
            var pending = watches.ToList();
            while (pending.Count > 0)
            {
                var done = await Task.WhenAny(pending);
                pending.Remove(done);
                var (rank, final) = await done;
                if (final == "completed") continue;
                watching.Cancel();
                throw await Classify(run, workers, plan.Pids, $"rank {rank} (worker '{workers[rank].WorkerId}'): {final}");
            }
            log.LogInformation("run {Run}: every rank completed step {Steps}", runId, run.Spec.Recipe.Steps);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            // cancelled or recovering: stop this run's ranks (the run id keeps a late stop off any later run)
            _ = Task.WhenAll(workers.Select(w => Stop(w, runId)));
            throw;
        }
    }

    public Task<string> FinishAsync(TrainingRun run, Evaluation? lastEval, CancellationToken cancel)
    {
        string path = Path.Combine(Path.GetFullPath(run.OutDirectory), FinalModel.FileName);
        return Task.Run(() =>
        {
            try { FinalModel.Write(CheckpointDirectory(run), path, run.JobId, run.Spec.Recipe.Steps, lastEval); }
            catch (Exception e) when (e is InvalidDataException or IOException or CheckpointMismatchException or SafetensorsFormatException)
            {
                throw new InvalidOperationException($"final model {path}: {e.Message}", e);
            }
            log.LogInformation("job {Job}: wrote {Path}", run.JobId, path);
            return path;
        }, cancel);
    }

    /// <summary>The device of the job's ranks: the spec's, else (null) the workers' own default (WorkerJobSpec's).</summary>
    public static string WorkerDevice(Jobs.JobSpec spec) => spec.Device is { Length: > 0 } d ? d : new WorkerJobSpec().Device;

    /// <summary>Rank 0's Progress as the grain sees it: loss, throughput and the step's evaluation, if it had one.</summary>
    public static TrainingProgress ProgressOf(Progress p, Jobs.JobSpec spec) =>
        new(p.Step, spec.Recipe.Steps, p.Loss, spec.Recipe.GlobalBatch / Math.Max(p.StepSeconds, 1e-9),
            p.Evaluated ? new Evaluation(p.Step, p.EvalLoss, p.Top1, p.Top5, p.EvalImages) : null);

    async Task Stop(WorkerAssignment w, string runId)
    {
        try { await Client(w).StopJobAsync(new StopJobRequest { JobId = runId, Reason = "cancelled by the coordinator" }, deadline: DateTime.UtcNow + ProbeTimeout); }
        catch (RpcException) { /* gone or already ended: nothing to stop */ }
    }

    /// <summary>Rank <paramref name="w"/>'s progress until its final state; a broken stream is a final state too.</summary>
    async Task<(int Rank, string Final)> Watch(TrainingRun run, WorkerAssignment w, string runId, Action<Progress>? onEach, CancellationToken cancel)
    {
        try
        {
            using var call = Client(w).WatchProgress(new ProgressRequest { JobId = runId }, cancellationToken: cancel);
            while (await call.ResponseStream.MoveNext(cancel))
            {
                var p = call.ResponseStream.Current;
                if (p.FinalState.Length > 0) return (w.Rank, p.FinalState);
                onEach?.Invoke(p);
            }
            return (w.Rank, "the progress stream ended without a final state");
        }
        catch (RpcException e) when (!cancel.IsCancellationRequested)
        {
            return (w.Rank, $"lost contact ({e.StatusCode}: {e.Status.Detail})");
        }
    }

    /// <summary>Runs <paramref name="call"/> on every rank at once; the first failure is classified (a lost worker, or the job's error naming the rank and the phase).</summary>
    async Task OnEveryRank(TrainingRun run, IReadOnlyList<WorkerAssignment> workers, int[] pids, string phase,
                           Func<WorkerAssignment, WorkerControl.WorkerControlClient, Task> call, CancellationToken cancel, bool probe)
    {
        var tasks = workers.Select(async w =>
        {
            try { await call(w, Client(w)); return ((WorkerAssignment, RpcException)?)null; }
            catch (RpcException e) when (!cancel.IsCancellationRequested)
            {
                return (w, e);
            }
        }).ToList();
        var failures = (await Task.WhenAll(tasks)).Where(f => f is not null).Select(f => f!.Value).ToList();
        if (failures.Count == 0) return;
        var (worker, error) = failures[0];
        string what = $"{phase} on rank {worker.Rank} (worker '{worker.WorkerId}' at {worker.Endpoint}) failed: {error.StatusCode}: {error.Status.Detail}";
        if (error.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Internal or StatusCode.Aborted)
        {
            if (!probe) throw new WorkerLostException(worker.WorkerId, what);
            throw await Classify(run, workers, pids, what);
        }
        throw new InvalidOperationException(what);
    }

    /// <summary>
    /// After a failure: probes every rank (Health, <see cref="ProbeTimeout"/>). The first rank that
    /// does not answer, or answers from another process than the one that joined the run, is lost;
    /// if every rank answers, the failure is the job's own.
    /// </summary>
    async Task<Exception> Classify(TrainingRun run, IReadOnlyList<WorkerAssignment> workers, int[] pids, string failure)
    {
        var probes = await Task.WhenAll(workers.Select(async w =>
        {
            try
            {
                var h = await Client(w).HealthAsync(new HealthRequest(), deadline: DateTime.UtcNow + ProbeTimeout);
                return pids[w.Rank] != 0 && h.ProcessId != pids[w.Rank]
                    ? $"answers from process {h.ProcessId}, not {pids[w.Rank]} which joined the run (restarted)"
                    : null;
            }
            catch (RpcException e) { return $"does not answer ({e.StatusCode}: {e.Status.Detail})"; }
        }));
        for (int r = 0; r < workers.Count; r++)
            if (probes[r] is { } gone)
            {
                var w = workers[r];
                log.LogWarning("job {Job} attempt {Attempt}: rank {Rank} (worker {Worker}) is gone: {Why}; after: {Failure}", run.JobId, run.Attempt, r, w.WorkerId, gone, failure);
                return new WorkerLostException(w.WorkerId, $"rank {r} (worker '{w.WorkerId}' at {w.Endpoint}) {gone}; the run ended with: {failure}");
            }
        return new InvalidOperationException(failure);
    }

    /// <summary>metrics.jsonl keeps the lines up to the start step (a resumed attempt rewrites what follows); attempts.jsonl gains one line per attempt.</summary>
    MetricsLog OpenLogs(TrainingRun run, string runId, RunPlan plan, long start)
    {
        Directory.CreateDirectory(run.OutDirectory);
        File.AppendAllText(Path.Combine(run.OutDirectory, AttemptsFile), JsonSerializer.Serialize(new
        {
            run = runId, attempt = run.Attempt, world = run.Workers.Count, workers = Ranks(run).Select(w => w.WorkerId).ToArray(),
            start_step = start, resumed_from = plan.ResumeFrom, resumed_step = plan.ResumeFrom is null ? (long?)null : plan.ResumeStep,
            scattered_from = plan.ResumeFrom is null ? run.CheckpointPath : null, at = DateTimeOffset.UtcNow,
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

    WorkerControl.WorkerControlClient Client(WorkerAssignment w)
    {
        var token = options.Value.ClusterToken is { Length: > 0 } t ? new ClusterToken(t)
            : throw new InvalidOperationException("the coordinator has no cluster token (--token-file or JETPACK_CLUSTER_TOKEN): workers refuse every call without it");
        var channel = channels.GetOrAdd(w.Endpoint, e => WireChannels.Open(Authority(e), WireLimits.Default));
        return new WorkerControl.WorkerControlClient(channel.Intercept(new ClusterTokenCallInterceptor(token)));
    }

    public void Dispose()
    {
        foreach (var c in channels.Values) c.Dispose();
    }
}
