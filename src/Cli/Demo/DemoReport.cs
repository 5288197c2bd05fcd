using System.Globalization;
using System.Text;
using System.Text.Json;
using Spectre.Console;
using Jetpack.Cli.Study;

namespace Jetpack.Cli.Demo;

/// <summary>
/// The demo's result: a table (model, initialisation, top-1 / top-5 on the 5,000 test images of
/// classes 5–9, steps, wall time, where it ran) printed and written as results.md / results.json,
/// and convergence.png (training loss per step of every run; every evaluation of every run's
/// metrics.jsonl as a top-1 point — for the Jetpack job, the coordinator job's periodic evaluations).
/// </summary>
public sealed class DemoReport(StudyPlan plan, int workers, IReadOnlyList<RunResult> runs, IReadOnlyDictionary<string, double> runSeconds,
                               IReadOnlyDictionary<string, double?> stageSeconds, double totalSeconds)
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    string Init(RunResult r) => r.Run.Init switch
    {
        StudyInit.Recycled => "recycled (importance-L2) from the upstream predecessor + target",
        StudyInit.Scratch => "from scratch",
        var other => other.ToString(),
    };

    string Where(RunResult r) => r.Run.Init == StudyInit.Recycled ? $"{workers} worker processes (expert parallelism)" : "this process";

    double Seconds(RunResult r) => runSeconds.TryGetValue(r.Run.Id, out var s) ? s : double.NaN;

    public Table Table()
    {
        var t = new Table().AddColumns("model", "init", "top-1", "top-5", "steps", "time", "where");
        foreach (var r in runs)
            t.AddRow(Markup.Escape($"{r.Run.Label} ({r.Run.Model})"), Markup.Escape(Init(r)), $"{100 * r.FinalTop1:F2}%", $"{100 * r.FinalTop5:F2}%",
                     r.Steps.ToString(Inv), $"{Seconds(r):F0} s", Markup.Escape(Where(r)));
        return t;
    }

    public void Write(string dir)
    {
        var md = new StringBuilder();
        md.AppendLine($"# jetpack demo ({plan.Name})");
        md.AppendLine();
        md.AppendLine($"Fashion-MNIST classes {StudyPlan.DownstreamClasses}, {plan.PerClass} training images per class, {plan.DownstreamSteps} steps of {plan.DownstreamBatch}; " +
                      $"top-1/top-5 on the test images of classes {StudyPlan.DownstreamClasses}. Upstream: {plan.PredecessorSteps} / {plan.TargetSteps} steps on classes {StudyPlan.UpstreamClasses}. " +
                      $"Total {totalSeconds / 60:F1} min.");
        md.AppendLine();
        md.AppendLine("| model | init | top-1 | top-5 | steps | time | where |");
        md.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in runs)
            md.AppendLine(string.Create(Inv, $"| {r.Run.Label} (`{r.Run.Model}`) | {Init(r)} | {100 * r.FinalTop1:F2}% | {100 * r.FinalTop5:F2}% | {r.Steps} | {Seconds(r):F0} s | {Where(r)} |"));
        md.AppendLine();
        md.AppendLine("Stages: " + string.Join(", ", stageSeconds.Select(kv => kv.Value is { } t ? string.Create(Inv, $"{kv.Key} {t:F0} s") : $"{kv.Key} reused")));
        md.AppendLine();
        md.AppendLine("![convergence](convergence.png)");
        File.WriteAllText(Path.Combine(dir, "results.md"), md.ToString());
        File.WriteAllText(Path.Combine(dir, "results.json"), JsonSerializer.Serialize(new
        {
            plan = plan.Name, workers, plan.DownstreamSteps, plan.DownstreamBatch, plan.PerClass, plan.PredecessorSteps, plan.TargetSteps,
            total_seconds = totalSeconds, stage_seconds = stageSeconds,
            runs = runs.Select(r => new
            {
                id = r.Run.Id, label = r.Run.Label, model = r.Run.Model, init = Init(r), top1 = r.FinalTop1, top5 = r.FinalTop5,
                steps = r.Steps, seconds = Seconds(r), where = Where(r),
                curve = r.Curve.Select(c => new { step = c.Step, top1 = c.Top1 }),        // every evaluation the plot shows
            }),
        }, new JsonSerializerOptions { WriteIndented = true }));
        Plot(Path.Combine(dir, "convergence.png"), dir);
    }

    void Plot(string path, string dir)
    {
        var plot = new ScottPlot.Plot();
        foreach (var r in runs)
        {
            var (steps, losses) = Losses(Path.Combine(dir, "runs", r.Run.Id, "metrics.jsonl"));
            var line = plot.Add.Scatter(steps, Smooth(losses));
            line.LegendText = $"{r.Run.Label}: loss";
            line.MarkerSize = 0;
            var acc = plot.Add.Scatter(r.Curve.Select(c => (double)c.Step).ToArray(), r.Curve.Select(c => 100 * c.Top1).ToArray());
            acc.LegendText = $"{r.Run.Label}: top-1 {100 * r.FinalTop1:F1}%";
            acc.Color = line.Color;
            acc.LinePattern = ScottPlot.LinePattern.Dashed;
            acc.MarkerSize = 7;
            acc.Axes.YAxis = plot.Axes.Right;
        }
        plot.Axes.Bottom.Label.Text = "step";
        plot.Axes.Left.Label.Text = "training loss (moving average)";
        plot.Axes.Right.Label.Text = "eval top-1 (%)";
        plot.Title($"Fashion-MNIST {StudyPlan.DownstreamClasses}, {plan.PerClass} images/class: MoE Jetpack vs from scratch");
        plot.ShowLegend(ScottPlot.Edge.Bottom);                                 // outside the data: top-1 points end top right
        plot.SavePng(path, 1000, 700);
    }

    static (double[] Steps, double[] Losses) Losses(string metricsPath)
    {
        var steps = new List<double>(); var losses = new List<double>();
        foreach (var line in File.ReadLines(metricsPath))
        {
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            if (!doc.RootElement.TryGetProperty("loss", out var loss) || loss.ValueKind != JsonValueKind.Number) continue;   // an evaluation-only line
            steps.Add(doc.RootElement.GetProperty("step").GetDouble());
            losses.Add(loss.GetDouble());
        }
        return (steps.ToArray(), losses.ToArray());
    }

    /// <summary>Exponential moving average (0.9): the per-step loss of small augmented batches is noisy.</summary>
    static double[] Smooth(double[] x)
    {
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = i == 0 ? x[0] : 0.9 * y[i - 1] + 0.1 * x[i];
        return y;
    }
}
