using System.Globalization;
using System.Text;
using System.Text.Json;
using Jetpack.Model.Registry;

namespace Jetpack.Cli.Study;

/// <summary>One finished downstream run, read back from its metrics.jsonl.</summary>
public sealed record RunResult(StudyRun Run, IReadOnlyList<(long Step, double Top1)> Curve, double FinalTop1, double FinalTop5,
                               double MedianImagesPerSecond, long Steps)
{
    public static RunResult Read(StudyRun run, string metricsPath)
    {
        var curve = new List<(long, double)>();
        var speeds = new List<double>();
        double top1 = double.NaN, top5 = double.NaN;
        long steps = 0;
        foreach (var line in File.ReadLines(metricsPath))
        {
            using var doc = JsonDocument.Parse(line);
            var e = doc.RootElement;
            steps = e.GetProperty("step").GetInt64();
            speeds.Add(e.GetProperty("images_per_s").GetDouble());
            if (e.TryGetProperty("top1", out var t) && t.ValueKind == JsonValueKind.Number)
            {
                top1 = t.GetDouble();
                top5 = e.GetProperty("top5").GetDouble();
                curve.Add((steps, top1));
            }
        }
        if (curve.Count == 0) throw new InvalidDataException($"{metricsPath}: no evaluation in the metrics of run {run.Id}");
        speeds.Sort();
        return new RunResult(run, curve, top1, top5, speeds[speeds.Count / 2], steps);
    }

    /// <summary>The first evaluated step at which top-1 reached <paramref name="accuracy"/>, or null.</summary>
    public long? StepsToReach(double accuracy) => Curve.Where(c => c.Top1 >= accuracy).Select(c => (long?)c.Step).FirstOrDefault();
}

/// <summary>Tables 1 and 3 (Markdown), the targets of issue 4 §4, bf16 vs fp32, and the Fig. 5 plots.</summary>
public sealed class StudyReport(StudyPlan plan, IReadOnlyList<RunResult> results, IReadOnlyDictionary<string, double> stageSeconds, double totalSeconds,
                                IReadOnlyList<string>? notes = null)
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    RunResult? Get(string id) => results.FirstOrDefault(r => r.Run.Id == id);

    public void Write(string dir)
    {
        File.WriteAllText(Path.Combine(dir, "results.md"), Markdown());
        File.WriteAllText(Path.Combine(dir, "results.json"), JsonSerializer.Serialize(new
        {
            plan = plan.Name, plan.DownstreamSteps, plan.DownstreamBatch, plan.PerClass, plan.PredecessorSteps, plan.TargetSteps,
            total_seconds = totalSeconds, stage_seconds = stageSeconds, notes = notes ?? [],
            runs = results.Select(r => new
            {
                id = r.Run.Id, label = r.Run.Label, model = r.Run.Model, init = r.Run.Init.ToString(), table = r.Run.Table,
                top1 = r.FinalTop1, top5 = r.FinalTop5, images_per_s = r.MedianImagesPerSecond, steps = r.Steps,
                curve = r.Curve.Select(c => new { step = c.Step, top1 = c.Top1 }),
            }),
        }, new JsonSerializerOptions { WriteIndented = true }));
        Plot(Path.Combine(dir, "fig5_convergence.png"), $"Fashion-MNIST {StudyPlan.DownstreamClasses}, {plan.PerClass} images/class: top-1 vs step (cf. paper Fig. 5)", results.Where(r => r.Run.Table == 1));
        Plot(Path.Combine(dir, "table3_strategies.png"), "Recycling strategies: top-1 vs step (cf. paper Table 3)",
             results.Where(r => r.Run.Table == 3 || r.Run.Id == "jetpack"));
    }

    string Markdown()
    {
        var md = new StringBuilder();
        md.AppendLine($"# MoE Jetpack on Fashion-MNIST ({plan.Name} plan)");
        md.AppendLine();
        md.AppendLine($"Upstream: classes {StudyPlan.UpstreamClasses}, predecessor `vit_fmnist_pred` {plan.PredecessorSteps} steps and target `vit_fmnist_t` {plan.TargetSteps} steps of {plan.UpstreamBatch}. "
                    + $"Downstream: classes {StudyPlan.DownstreamClasses}, {plan.PerClass} training images per class, {plan.DownstreamSteps} steps of {plan.DownstreamBatch} for every run; "
                    + $"top-1 on all 5,000 test images of classes {StudyPlan.DownstreamClasses} (curves: the first {plan.EvalImages:N0}).");
        md.AppendLine();
        var soft = Get("soft_moe_scratch");
        md.AppendLine("## Table 1 — methods at equal steps");
        md.AppendLine();
        md.AppendLine("| method | model | params (M) | MMACs | top-1 (%) | Δ vs Soft MoE | steps to Soft MoE's final top-1 | images/s |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results.Where(r => r.Run.Table == 1))
        {
            var spec = ModelRegistry.Get(r.Run.Model);
            long parameters;
            using (var m = ModelRegistry.Create(spec, TorchSharp.torch.META)) parameters = ModelRegistry.ParameterCount(m);
            string delta = soft is null ? "–" : F(100 * (r.FinalTop1 - soft.FinalTop1), "+0.0;-0.0");
            string reach = soft is null ? "–" : r.StepsToReach(soft.FinalTop1) is { } s ? $"{s} ({F(100.0 * s / soft.Steps, "0")}%)" : "not reached";
            md.AppendLine($"| {r.Run.Label} | `{r.Run.Model}` | {F(parameters / 1e6, "0.00")} | {F(FlopCounter.ForwardMacs(spec) / 1e6, "0.0")} | **{F(100 * r.FinalTop1, "0.00")}** | {delta} | {reach} | {F(r.MedianImagesPerSecond, "0")} |");
        }
        md.AppendLine();

        var jet = Get("jetpack");
        md.AppendLine("## Table 3 — recycling strategies (all V-JetMoE-fmnist, same recipe)");
        md.AppendLine();
        md.AppendLine("| strategy | top-1 (%) | Δ vs importance |");
        md.AppendLine("|---|---:|---:|");
        foreach (var r in results.Where(r => r.Run.Table == 3 || r.Run.Id == "jetpack"))
            md.AppendLine($"| {(r.Run.Id == "jetpack" ? "importance sampling (L2), the default" : r.Run.Label)} | {F(100 * r.FinalTop1, "0.00")} | {(jet is null ? "–" : F(100 * (r.FinalTop1 - jet.FinalTop1), "+0.00;-0.00"))} |");
        md.AppendLine();

        md.AppendLine("## Targets (issue 4 §4)");
        md.AppendLine();
        if (jet is not null && soft is not null)
        {
            double gap = 100 * (jet.FinalTop1 - soft.FinalTop1);
            var reach = jet.StepsToReach(soft.FinalTop1);
            md.AppendLine($"- Jetpack − Soft MoE from scratch: **{F(gap, "+0.00;-0.00")} points** (target ≥ 5): {(gap >= 5 ? "met" : "missed")}.");
            md.AppendLine($"- Jetpack reaches Soft MoE's final top-1 ({F(100 * soft.FinalTop1, "0.00")}%) at step **{(reach is { } s ? s.ToString(Inv) : "never")}** of {soft.Steps} "
                        + $"(target ≤ {soft.Steps / 4}, i.e. ¼): {(reach is { } t && t <= soft.Steps / 4 ? "met" : "missed")}. Evaluations every {Math.Max(1, plan.DownstreamSteps / plan.Evaluations)} steps bound the resolution.");
        }
        else md.AppendLine("- needs both the `jetpack` and the `soft_moe_scratch` runs.");
        var bf16 = Get("jetpack_bf16");
        if (jet is not null && bf16 is not null)
        {
            md.AppendLine();
            md.AppendLine("## bf16 policy vs fp32 (MoE Jetpack run)");
            md.AppendLine();
            md.AppendLine($"- step time bf16 / fp32: **{F(jet.MedianImagesPerSecond / bf16.MedianImagesPerSecond, "0.00")}** (median images/s {F(bf16.MedianImagesPerSecond, "0")} vs {F(jet.MedianImagesPerSecond, "0")})");
            md.AppendLine($"- top-1 bf16 − fp32: **{F(100 * (bf16.FinalTop1 - jet.FinalTop1), "+0.00;-0.00")} points** ({F(100 * bf16.FinalTop1, "0.00")}% vs {F(100 * jet.FinalTop1, "0.00")}%)");
        }
        if (notes is { Count: > 0 })
        {
            md.AppendLine();
            md.AppendLine("## Notes");
            md.AppendLine();
            foreach (var n in notes) md.AppendLine($"- {n}");
        }
        md.AppendLine();
        md.AppendLine("## Time");
        md.AppendLine();
        md.AppendLine("| stage | seconds |");
        md.AppendLine("|---|---:|");
        foreach (var (stage, s) in stageSeconds) md.AppendLine($"| {stage} | {F(s, "0")} |");
        md.AppendLine($"| **total** | **{F(totalSeconds, "0")}** |");
        md.AppendLine();
        md.AppendLine("![convergence](fig5_convergence.png)");
        md.AppendLine();
        md.AppendLine("![strategies](table3_strategies.png)");
        return md.ToString();
    }

    static string F(double x, string format) => x.ToString(format, Inv);

    static void Plot(string path, string title, IEnumerable<RunResult> runs)
    {
        var plot = new ScottPlot.Plot();
        foreach (var r in runs)
        {
            var line = plot.Add.Scatter(r.Curve.Select(c => (double)c.Step).ToArray(), r.Curve.Select(c => 100 * c.Top1).ToArray());
            line.LegendText = $"{r.Run.Label} ({100 * r.FinalTop1:F1}%)";
            line.LineWidth = r.Run.Id == "jetpack" ? 3 : 1.5f;
        }
        plot.Axes.Bottom.Label.Text = "downstream step";
        plot.Axes.Left.Label.Text = "top-1 (%)";
        plot.Title(title);
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        plot.SavePng(path, 1000, 600);
    }
}
