using System.Diagnostics;
using Jetpack.Model.Data;
using Jetpack.Model.Moe;
using Jetpack.Model.Training;

namespace Jetpack.Application.Training;

/// <summary>The cadences of a run (from its <see cref="Runs.RunSpec"/>).</summary>
/// <param name="EvalEvery">evaluate every this many steps on <paramref name="EvalLimit"/> images; the recipe's last step evaluates the whole split</param>
/// <param name="CheckpointDir">the run's topology-free checkpoint directory; null = no periodic checkpoints</param>
/// <param name="BeforeCheckpoint">called before each periodic save (dir, step): test-only fault injection</param>
public sealed record TrainingCadence(int EvalEvery, int? EvalLimit, int CheckpointEvery, string? CheckpointDir,
                                     Action<string, long>? BeforeCheckpoint = null)
{
    public static TrainingCadence Of(Runs.RunSpec run, string? checkpointDir) =>
        new(run.EvalEvery, run.Data.EvalLimit, run.CheckpointEvery, checkpointDir);
}

/// <summary>Cumulative seconds a rank has spent in the expert exchange and the all-reduce (the loop reports each step's share).</summary>
public readonly record struct CommunicationSeconds(double Exchange, double AllReduce);

/// <summary>
/// The one training loop — `jetpack train` in one process, and each rank of a distributed run
/// (jetpack-worker): steps the <see cref="Trainer"/> until the stop step (the recipe's steps,
/// --until, or a <see cref="TrainingControl.RequestStop"/>), evaluates every eval_every steps on
/// data.eval_limit images and at the recipe's last step on the whole split, checkpoints every
/// checkpoint_every steps, at the stop step (not at a stop request: ranks may see it after different
/// steps) and on request, and tells its observers.
/// Distributed: every rank runs the same loop over the same cadences, so every rank calls the
/// collective <see cref="Trainer.Evaluate"/> and <see cref="Trainer.Save"/> after the same steps.
/// The periodic garbage collection is the Trainer's (recipe.collect_garbage_every).
/// </summary>
public sealed class TrainingLoop(Trainer trainer, IImageDataset? eval, TrainingCadence cadence, IReadOnlyList<ITrainingObserver> observers,
                                 TrainingControl? control = null, Func<CommunicationSeconds>? communication = null)
{
    /// <summary>Requests from other threads; its step is the trainer's from construction on (a resumed run refuses requests for steps it has done).</summary>
    public TrainingControl Control { get; } = Attach(control ?? new TrainingControl(), trainer.Step);

    private static TrainingControl Attach(TrainingControl control, long step)
    {
        control.Step = step;
        return control;
    }

    /// <summary>The step after which the run stops: the recipe's last step, or <paramref name="until"/> if earlier (0 or null = none).</summary>
    public long StopStep(long? until) => until is > 0 ? Math.Min(until.Value, trainer.Options.Steps) : trainer.Options.Steps;

    /// <summary>Runs from the trainer's step to <paramref name="until"/>'s stop step (or an earlier stop request); returns the last step done.</summary>
    public long Run(long? until = null)
    {
        long stop = StopStep(until), last = trainer.Options.Steps;
        Control.Step = trainer.Step;
        foreach (var o in observers) o.OnStart(trainer.Step, stop);
        while (trainer.Step < stop && trainer.Step < Control.StopAfter)
        {
            var before = communication?.Invoke();
            var clock = Stopwatch.StartNew();
            var r = trainer.TrainStep();
            double seconds = clock.Elapsed.TotalSeconds;
            var after = communication?.Invoke();                                       // before the routing merge's all-reduce (not the step's)
            var routing = Routing();                                                   // before an evaluation's forward replaces them
            Control.Step = r.Step;

            EvalResult? evaluated = null;
            if (eval is not null && (r.Step % cadence.EvalEvery == 0 || r.Step == last))
            {
                bool whole = r.Step == last;
                evaluated = trainer.Evaluate(eval, limit: whole ? null : cadence.EvalLimit);   // collective: every rank, same steps
                foreach (var o in observers) o.OnEvaluation(r.Step, evaluated, whole);
            }
            // Reported before the step's checkpoint: a checkpoint that completes while its last barrier is aborted
            // (a JoinJob of the next attempt) must not leave a saved step that no progress ever reported.
            var report = new StepReport(r.Step, r.Loss, r.LearningRate, r.GradNorm, r.Images, seconds,
                                        after?.Exchange - before?.Exchange, after?.AllReduce - before?.AllReduce, evaluated,
                                        r.DataWaitSeconds, r.ImagesRead, r.BadFiles, routing);
            foreach (var o in observers) o.OnStep(report);
            if (cadence.CheckpointDir is { } dir && (r.Step % cadence.CheckpointEvery == 0 || r.Step == stop))
            {
                cadence.BeforeCheckpoint?.Invoke(dir, r.Step);
                Save(dir, r.Step);
            }
            foreach (var (requested, reply) in Control.TakeDue(r.Step))
            {
                Save(requested, r.Step);
                reply.TrySetResult(r.Step);
            }
        }
        bool completed = trainer.Step >= last;
        foreach (var o in observers) o.OnEnd(trainer.Step, completed);
        return trainer.Step;
    }

    /// <summary>
    /// The training forward's routing summary of every MoE layer that collects statistics
    /// (SpheroMoE.CollectStatistics), or null. Distributed, every rank's statistics of its slice are merged
    /// into the global batch's (<see cref="RoutingStatistics.Merge"/>: one all-reduce of Σ(E + 3 + world)
    /// numbers per step, every rank at the same point of the same loop), so rank 0 reports what one process would.
    /// </summary>
    private IReadOnlyList<RoutingSummary>? Routing()
    {
        routers ??= trainer.Model.modules().OfType<SpheroMoE>().ToList();
        if (!routers.Any(m => m.CollectStatistics)) return null;
        // a layer without statistics (no forward yet) counts as zero tokens: every rank must pass the same-length vector
        IReadOnlyList<RoutingStatistics> stats = routers.Where(m => m.CollectStatistics)
            .Select(m => m.LastStatistics ?? new RoutingStatistics(m.LayerIndex, 0, 0, 0) { ExpertLoad = new double[m.Config.TotalExperts] }).ToList();
        if (trainer.Distributed is { WorldSize: > 1 } d)
            stats = RoutingStatistics.Merge(stats, d.Rank, d.WorldSize, v =>
            {
                using var t = TorchSharp.torch.tensor(v);                                      // [n] fp32, host: the reducer stages on the host anyway
                d.Reducer.AllReduceSum(trainer.Step, [t]);
                t.data<float>().CopyTo(v);
            });
        return stats.Select(RoutingSummary.Of).ToList();
    }

    private List<SpheroMoE>? routers;

    private void Save(string dir, long step)
    {
        trainer.Save(dir);
        foreach (var o in observers) o.OnCheckpoint(step, dir);
    }
}
