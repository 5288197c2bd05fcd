using Jetpack.Model.Training;

namespace Jetpack.Application.Training;

/// <summary>
/// One step of a run as observers see it. <paramref name="Seconds"/> is the step's wall time
/// (evaluation and checkpoints excluded); <paramref name="ExchangeSeconds"/> and
/// <paramref name="AllReduceSeconds"/> are given by distributed callers only;
/// <paramref name="Eval"/> is set when the step ended with an evaluation.
/// </summary>
/// <paramref name="DataWaitSeconds"/> is the part of the step spent waiting for batches; <paramref name="ImagesRead"/>
/// the images this rank has read so far (its part of each epoch), <paramref name="BadFiles"/> the undecodable files met;
/// <paramref name="Routing"/> the step's routing per MoE layer, over the whole global batch (all ranks merged), when collected.
public sealed record StepReport(long Step, double Loss, double LearningRate, double GradNorm, int Images, double Seconds,
                                double? ExchangeSeconds = null, double? AllReduceSeconds = null, EvalResult? Eval = null,
                                double DataWaitSeconds = 0, long ImagesRead = 0, int BadFiles = 0,
                                IReadOnlyList<RoutingSummary>? Routing = null)
{
    public double ImagesPerSecond => Images / Math.Max(Seconds, 1e-9);
    /// <summary>The share of the step spent waiting for data (0..1).</summary>
    public double DataWaitShare => Seconds > 0 ? Math.Min(1, DataWaitSeconds / Seconds) : 0;
}

/// <summary>
/// What a <see cref="TrainingLoop"/> tells about its run, in order: start, then per step its
/// evaluation (if any), its checkpoints (if any) and the step itself, then the end. Every method
/// runs on the loop's thread; an exception from one ends the run.
/// </summary>
public interface ITrainingObserver
{
    /// <summary>The run starts at <paramref name="startStep"/> (0, or where it resumed) and will stop at <paramref name="stopStep"/> unless asked earlier.</summary>
    void OnStart(long startStep, long stopStep) { }
    /// <param name="wholeSplit">the final evaluation, on the whole eval split (otherwise data.eval_limit images)</param>
    void OnEvaluation(long step, EvalResult result, bool wholeSplit) { }
    void OnCheckpoint(long step, string directory) { }
    void OnStep(StepReport report) { }
    /// <param name="completed">the recipe's last step was reached (else: stopped early, by --until or a request)</param>
    void OnEnd(long step, bool completed) { }
}
