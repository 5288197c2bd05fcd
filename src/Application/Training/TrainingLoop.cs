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
            var routing = Routing();                                                   // before an evaluation's forward replaces them
            var after = communication?.Invoke();
            Control.Step = r.Step;

            EvalResult? evaluated = null;
            if (eval is not null && (r.Step % cadence.EvalEvery == 0 || r.Step == last))
            {
                bool whole = r.Step == last;
                evaluated = trainer.Evaluate(eval, limit: whole ? null : cadence.EvalLimit);   // collective: every rank, same steps
                foreach (var o in observers) o.OnEvaluation(r.Step, evaluated, whole);
            }
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
            var report = new StepReport(r.Step, r.Loss, r.LearningRate, r.GradNorm, r.Images, seconds,
                                        after?.Exchange - before?.Exchange, after?.AllReduce - before?.AllReduce, evaluated,
                                        r.DataWaitSeconds, r.ImagesRead, r.BadFiles, routing);
            foreach (var o in observers) o.OnStep(report);
        }
        bool completed = trainer.Step >= last;
        foreach (var o in observers) o.OnEnd(trainer.Step, completed);
        return trainer.Step;
    }

    /// <summary>The training forward's routing statistics of every MoE layer that collects them (SpheroMoE.CollectStatistics), or null.</summary>
    private IReadOnlyList<RoutingStatistics>? Routing()
    {
        routers ??= trainer.Model.modules().OfType<SpheroMoE>().ToList();
        var stats = routers.Where(m => m.CollectStatistics && m.LastStatistics is not null).Select(m => m.LastStatistics!).ToList();
        return stats.Count == 0 ? null : stats;
    }

    private List<SpheroMoE>? routers;

    private void Save(string dir, long step)
    {
        trainer.Save(dir);
        foreach (var o in observers) o.OnCheckpoint(step, dir);
    }
}
