using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Application.Runs;
using Jetpack.Application.Training;
using Jetpack.GpuWorker.DataPlane;
using Jetpack.GpuWorker.Hosting;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Data;
using Jetpack.Model.Distributed;
using Jetpack.Model.Registry;
using Jetpack.Model.Torch;
using Jetpack.Model.Training;
using Jetpack.Protocol.Wire;

namespace Jetpack.GpuWorker.Jobs;

/// <summary>
/// One rank's part of a training job, on a thread of its own (torch's grad mode and dispose scopes
/// are per thread; the exchange blocks it). Setup: the full model is initialised exactly as the
/// single process does (seeded, or from the init checkpoint), this rank's slice of it is kept
/// (replicated parameters + its <see cref="ExpertRange"/>: the scatter, done locally from the same
/// seed), and the Trainer runs in distributed mode over the node's gRPC exchange and ring reducer,
/// driven by the one <see cref="TrainingLoop"/> (evaluations, checkpoints, stop and checkpoint
/// requests at the same steps on every rank). Every step is published as <see cref="Progress"/>
/// (<see cref="ProgressPublisher"/>); the last message carries the final state.
/// </summary>
public sealed class TrainingJob : IWorkerJob
{
    private readonly WorkerNode node;
    private readonly WorkerJobSpec spec;
    private readonly string? resumeFrom;
    private readonly long until;
    private readonly object gate = new();
    private readonly List<Progress> log = [];
    private TaskCompletionSource changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<long> started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TrainingControl control = new();

    private TrainingJob(WorkerNode node, string jobId, WorkerJobSpec spec, string? resumeFrom, long until)
    {
        this.node = node; JobId = jobId; this.spec = spec; this.resumeFrom = resumeFrom; this.until = until;
    }

    public string JobId { get; }
    /// <summary>The step the job starts from (after a resume), or the setup error.</summary>
    public Task<long> Started => started.Task;
    public bool Finished { get; private set; }
    /// <summary>Completes when the job's thread has released its model (after the final progress message).</summary>
    public Task Ended => ended.Task;
    public long Step => control.Step;

    public static TrainingJob Start(WorkerNode node, string jobId, WorkerJobSpec spec, string? resumeFrom, long until)
    {
        var job = new TrainingJob(node, jobId, spec, resumeFrom, until);
        new Thread(job.Run, 16 << 20) { Name = $"job {jobId} rank {node.Membership.Rank}", IsBackground = true }.Start();
        return job;
    }

    /// <summary>Stop after <paramref name="afterStep"/> (0 = after the running step); returns the step it will stop at.</summary>
    public long RequestStop(long afterStep) => Refused(() => control.RequestStop(afterStep));

    /// <summary>Checkpoint after <paramref name="afterStep"/> (0 = after the running step); a step already done is refused, so all ranks save the same step.</summary>
    public Task<long> RequestCheckpoint(string dir, long afterStep) => Refused(() => control.RequestCheckpoint(dir, afterStep));

    private T Refused<T>(Func<T> request)
    {
        try { return request(); }
        catch (InvalidOperationException e) { throw new InvalidOperationException($"rank {node.Membership.Rank}: job '{JobId}' is {e.Message}", e); }
    }

    /// <summary>The progress messages from <paramref name="from"/> on, and a task that completes when there are more.</summary>
    public (IReadOnlyList<Progress> Items, Task More) Read(int from)
    {
        lock (gate) return (log.Skip(from).ToList(), changed.Task);
    }

    private void Publish(Progress p)
    {
        TaskCompletionSource old;
        lock (gate)
        {
            log.Add(p);
            old = changed;
            changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        old.TrySetResult();
    }

    private void Finish(RunEnd end, string reason)
    {
        Finished = true;
        Publish(new Progress { JobId = JobId, Rank = node.Membership.Rank, Step = Step, End = end, EndReason = reason });
        control.FailPending($"the job ended ({end.ToString().ToLowerInvariant()}{(reason.Length > 0 ? ": " + reason : "")})");
    }

    private void Run()
    {
        int rank = node.Membership.Rank, world = node.Membership.WorldSize;
        nn.Module<Tensor, Tensor>? model = null;
        Trainer? trainer = null;
        List<Jetpack.Model.Moe.SpheroMoE> routers = [];
        GrpcExpertExchange groupExchange = null!;
        GrpcRingReducer? expertReducer = null;
        var metrics = node.Metrics;
        TrainingLoop loop;
        try
        {
            try
            {
                var modelSpec = spec.ResolveWorkerModel();
                var device = Devices.Parse(spec.Device ?? RunSpec.WorkerDefaultDevice);
                node.Mailbox.Placement.Device = device;                         // received slots land beside this rank's own
                // the class-folder index is kept beside the run (its checkpoint directory's parent), built once for all ranks and restarts
                string? runDir = spec.Out ?? (spec.CheckpointDir is { } cp ? Path.GetDirectoryName(Path.GetFullPath(cp)) : null);
                var (train, eval) = RunDatasets.Open(spec.Data, modelSpec, RunDatasets.IndexDir(runDir), m => Console.Error.WriteLine($"rank {rank}: {m}"));
                var layout = spec.Layout(world);
                (groupExchange, expertReducer) = node.ForLayout(layout);
                var context = new DistributedContext(layout, rank, groupExchange, node.Reducer, expertReducer) { BucketElements = node.Options.Exchange.BucketElements };
                torch.manual_seed((long)spec.Recipe.Seed);                      // as `jetpack train` does before building its model
                if (spec.ResumeFromLoadedShard is not null)
                    model = ModelRegistry.Create(modelSpec, device, context.Shard);        // every tensor comes from the scattered checkpoint below
                else if (spec.InitFromLoadedShard)
                {
                    model = ModelRegistry.Create(modelSpec, device, context.Shard);
                    LoadShard(model, node.LoadedShard ?? throw new ArgumentException($"rank {rank}: init_from_loaded_shard, but no shard was loaded (LoadShard)"), rank);
                }
                else
                {
                    using var full = ModelRegistry.Create(modelSpec, device);
                    if (spec.Init is not null && ModelCheckpoint.Load(spec.Init, modelSpec, full) is { } warning && rank == 0)
                        Console.Error.WriteLine($"warning: {warning}");
                    model = ModelRegistry.Create(modelSpec, device, context.Shard);
                    var part = ExpertKeys.Slice(modelSpec, full.state_dict(), layout.ExpertParallel, layout.Position(rank));   // views: copied by load_state_dict
                    model.load_state_dict(part, strict: true);
                }
                // per-layer routing statistics for /metrics (opt-in on the layer: a few reductions per forward)
                routers = model.modules().OfType<Jetpack.Model.Moe.SpheroMoE>().ToList();
                foreach (var m in routers) m.CollectStatistics = true;
                trainer = new Trainer(modelSpec, model, train, spec.Recipe, device, context, spec.Data.Prefetch);
                if (resumeFrom is not null) trainer.Restore(resumeFrom);
                if (spec.ResumeFromLoadedShard is { } r)
                {
                    var state = node.LoadedShard ?? throw new ArgumentException($"rank {rank}: resume_from_loaded_shard, but no shard was loaded (LoadShard)");
                    trainer.RestoreScattered(state, r.Step, r.OptimizerSteps, r.Data, $"the shard of {r.Source} scattered to rank {rank} of {world}");
                }
                if (trainer.Shards is { } stream)
                    Console.Error.WriteLine($"rank {rank} of {world}: reads train shards [{string.Join(", ", stream.ShardIndices)}] (shard i → rank i mod {world}), " +
                                            $"{stream.Count} samples a pass, shuffle buffer {stream.BufferSize}");
                var publisher = new ProgressPublisher(JobId, rank, metrics, routers, Publish, ShardDataset.Of(train));
                var cadence = TrainingCadence.Of(spec, spec.CheckpointDir) with { BeforeCheckpoint = (dir, at) => CheckpointFault.BeforeSave(dir, at, rank, world) };
                loop = new TrainingLoop(trainer, eval, cadence, [publisher], control,
                                        () => new CommunicationSeconds(groupExchange.Elapsed.TotalSeconds, node.Reducer.Elapsed.TotalSeconds + (expertReducer?.Elapsed.TotalSeconds ?? 0)));
                started.SetResult(trainer.Step);
            }
            catch (Exception e)
            {
                started.TrySetException(e);
                Finish(RunEnd.Failed, $"setup: {e.Message}");
                return;
            }

            long stop = loop.StopStep(until);
            loop.Run(until);
            if (trainer.Step >= stop) Finish(RunEnd.Completed, "");
            else Finish(RunEnd.Stopped, $"stopped after step {trainer.Step}");
        }
        catch (Exception e)
        {
            // ExchangeFailedException names the rank and phase; anything else is this rank's own failure
            Finish(RunEnd.Failed, $"rank {rank} at step {Step + 1}: {e.Message}");
        }
        finally
        {
            trainer?.Dispose();
            model?.Dispose();
            expertReducer?.Dispose();
            ended.TrySetResult();
        }
    }

    /// <summary>Copies a loaded shard into the rank's model: the same keys and shapes, or an error listing what differs.</summary>
    private static void LoadShard(nn.Module<Tensor, Tensor> model, IReadOnlyDictionary<string, Tensor> shard, int rank)
    {
        var own = model.state_dict();
        var missing = own.Keys.Where(k => !shard.ContainsKey(k)).ToList();
        var unexpected = shard.Keys.Where(k => !own.ContainsKey(k)).ToList();
        var misShaped = own.Where(kv => shard.TryGetValue(kv.Key, out var t) && (!t.shape.SequenceEqual(kv.Value.shape) || t.dtype != kv.Value.dtype))
                           .Select(kv => $"{kv.Key}: got {shard[kv.Key].dtype} [{string.Join(", ", shard[kv.Key].shape)}], expected {kv.Value.dtype} [{string.Join(", ", kv.Value.shape)}]").ToList();
        if (missing.Count + unexpected.Count + misShaped.Count > 0)
            throw new ArgumentException($"rank {rank}: the loaded shard does not fit this rank's model — missing: [{string.Join(", ", missing)}]; " +
                                        $"unexpected: [{string.Join(", ", unexpected)}]; mis-shaped: [{string.Join("; ", misShaped)}]");
        model.load_state_dict(shard.ToDictionary(kv => kv.Key, kv => kv.Value), strict: true);
    }
}
