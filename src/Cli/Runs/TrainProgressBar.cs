using Spectre.Console;
using Jetpack.Application.Training;
using Jetpack.Model.Training;

namespace Jetpack.Cli.Runs;

/// <summary>A training run's live Spectre progress bar: step, loss, the last evaluation's top-1, speed (and, distributed, the exchange and all-reduce shares).</summary>
public sealed class TrainProgressBar(ProgressTask task, string label = "") : ITrainingObserver
{
    EvalResult? last;

    /// <summary>The run's last evaluation so far.</summary>
    public EvalResult? LastEvaluation => last;

    /// <summary>The columns of every training bar.</summary>
    public static Progress Columns() =>
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn());

    public void OnStart(long startStep, long stopStep) => task.Value = startStep;

    public void OnStep(StepReport r)
    {
        last = r.Eval ?? last;
        string eval = last is null ? "" : $"top-1 {100 * last.Top1:F1}% ";
        string speed = r.ExchangeSeconds is { } x
            ? $"{r.Seconds:F2} s/step (exchange {x:F2} s, all-reduce {r.AllReduceSeconds ?? 0:F2} s)"
            : $"{r.ImagesPerSecond:F0} img/s";
        task.Description = $"{label}step {r.Step} loss {r.Loss:F3} {eval}{speed}";
        task.Value = r.Step;
    }
}
