using System.Text.Json;

namespace Jetpack.Cli.Runs;

/// <summary>Training loss and eval top-1 against steps, from a metrics.jsonl, as a PNG (like the paper's Fig. 5).</summary>
public static class ConvergencePlot
{
    public static string Write(string metricsPath, string pngPath, string title)
    {
        var steps = new List<double>(); var losses = new List<double>();
        var evalSteps = new List<double>(); var top1 = new List<double>();
        foreach (var line in File.ReadLines(metricsPath))
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            double step = root.GetProperty("step").GetDouble();
            steps.Add(step);
            losses.Add(root.GetProperty("loss").GetDouble());
            if (root.TryGetProperty("top1", out var t) && t.ValueKind == JsonValueKind.Number)
            {
                evalSteps.Add(step);
                top1.Add(100 * t.GetDouble());
            }
        }
        var plot = new ScottPlot.Plot();
        var loss = plot.Add.Scatter(steps.ToArray(), losses.ToArray());
        loss.LegendText = "training loss";
        loss.MarkerSize = 0;
        plot.Axes.Left.Label.Text = "training loss";
        if (top1.Count > 0)
        {
            var acc = plot.Add.Scatter(evalSteps.ToArray(), top1.ToArray());
            acc.LegendText = "eval top-1 (%)";
            acc.Axes.YAxis = plot.Axes.Right;
            plot.Axes.Right.Label.Text = "eval top-1 (%)";
        }
        plot.Axes.Bottom.Label.Text = "step";
        plot.Title(title);
        plot.ShowLegend();
        plot.SavePng(pngPath, 900, 500);
        return pngPath;
    }
}
