using System.Globalization;
using System.Text;
using System.Text.Json;
using Jetpack.Model.Registry;

namespace Jetpack.Cli.Study;

/// <summary>One finished downstream run (one seed of one row), read back from its metrics.jsonl.</summary>
public sealed record RunResult(StudyRun Run, IReadOnlyList<(long Step, double Top1)> Curve, double FinalTop1, double FinalTop5,
                               double MedianImagesPerSecond, long Steps)
{
    /// <summary>Which repetition (0-based) of the row this is, and its seed.</summary>
    public int SeedIndex { get; init; }
    public ulong Seed { get; init; }

    public static RunResult Read(StudyRun run, string metricsPath, int seedIndex = 0, ulong seed = 0)
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
        return new RunResult(run, curve, top1, top5, speeds[speeds.Count / 2], steps) { SeedIndex = seedIndex, Seed = seed };
    }

    /// <summary>The first evaluated step at which top-1 reached <paramref name="accuracy"/>, or null.</summary>
    public long? StepsToReach(double accuracy) => Curve.Where(c => c.Top1 >= accuracy).Select(c => (long?)c.Step).FirstOrDefault();
}


/// <summary>
/// Tables 1, 3 and 4 in Markdown with 95 % intervals over seeds (issue 17), paired differences, the paper's claims
/// tested at that confidence, bf16 vs fp32, and the Fig. 5 / Table 3 / Table 4 plots with bands and error bars.
/// With one seed it is the one-seed report: means without intervals, and no claim is called decided.
/// </summary>
public sealed class StudyReport(StudyPlan plan, IReadOnlyList<RunResult> results, IReadOnlyDictionary<string, double?> stageSeconds, double totalSeconds,
                                IReadOnlyList<string>? notes = null)
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    const string Soft = "soft_moe_scratch", Jet = "jetpack", DenseUp = "dense_upstream", Random = "recycle_random";

    int Seeds => results.Select(r => r.SeedIndex).Distinct().Count();
    List<string> Rows(Func<StudyRun, bool> which) => results.Where(r => which(r.Run)).Select(r => r.Run.Id).Distinct().ToList();
    List<RunResult> Row(string id) => results.Where(r => r.Run.Id == id).OrderBy(r => r.SeedIndex).ToList();
    bool Has(string id) => results.Any(r => r.Run.Id == id);
    Dictionary<int, double> Top1(string id) => Row(id).ToDictionary(r => r.SeedIndex, r => r.FinalTop1);
    Interval Top1Interval(string id) => SeedStatistics.Of(Row(id).Select(r => r.FinalTop1).ToList());
    Interval? Paired(string a, string b) => Has(a) && Has(b) ? SeedStatistics.Paired(Top1(a), Top1(b)) : null;

    /// <summary>Per seed: the first evaluated step at which row <paramref name="id"/> reached that seed's Soft MoE final top-1 (null: never).</summary>
    List<(int Seed, long? Step, long SoftSteps)> Reach(string id) =>
        Row(id).Join(Row(Soft), r => r.SeedIndex, s => s.SeedIndex, (r, s) => (r.SeedIndex, r.StepsToReach(s.FinalTop1), s.Steps)).ToList();

    /// <summary>How many times fewer steps row <paramref name="id"/> needs for Soft MoE's final top-1, per seed that reached it.</summary>
    (Interval? Steps, Interval? SpeedUp, int Missed) Convergence(string id)
    {
        var reach = Reach(id);
        var hit = reach.Where(r => r.Step is > 0).ToList();
        if (hit.Count == 0) return (null, null, reach.Count);
        return (SeedStatistics.Of(hit.Select(r => (double)r.Step!.Value).ToList()),
                SeedStatistics.Of(hit.Select(r => (double)r.SoftSteps / r.Step!.Value).ToList()), reach.Count - hit.Count);
    }

    public void Write(string dir)
    {
        File.WriteAllText(Path.Combine(dir, "results.md"), Markdown());
        File.WriteAllText(Path.Combine(dir, "results.json"), JsonSerializer.Serialize(new
        {
            plan = plan.Name, plan.DownstreamSteps, plan.DownstreamBatch, plan.PerClass, plan.PredecessorSteps, plan.TargetSteps,
            eval_every = EvalEvery, seeds = Seeds, total_seconds = totalSeconds, stage_seconds = stageSeconds, notes = notes ?? [],
            claims = Claims().Select(c => new { claim = c.Claim, value = Json(c.Value), verdict = c.Verdict }),
            rows = results.Select(r => r.Run.Id).Distinct().Select(id => Row(id)).Select(row => new
            {
                id = row[0].Run.Id, label = row[0].Run.Label, model = row[0].Run.Model, init = row[0].Run.Init.ToString(), table = row[0].Run.Table,
                top1 = Json(Top1Interval(row[0].Run.Id)),
                delta_vs_soft_moe = Json(Paired(row[0].Run.Id, Soft)),
                delta_vs_dense_upstream = Json(Paired(row[0].Run.Id, DenseUp)),
                steps_to_soft_moe_final = Has(Soft) ? Json(Convergence(row[0].Run.Id).Steps) : null,
                speed_up_vs_soft_moe = Has(Soft) ? Json(Convergence(row[0].Run.Id).SpeedUp) : null,
                per_seed = row.Select(r => new
                {
                    seed_index = r.SeedIndex, seed = r.Seed, top1 = r.FinalTop1, top5 = r.FinalTop5, images_per_s = r.MedianImagesPerSecond, steps = r.Steps,
                    curve = r.Curve.Select(c => new { step = c.Step, top1 = c.Top1 }),
                }),
            }),
        }, new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
        Plot(Path.Combine(dir, "fig5_convergence.png"), $"Fashion-MNIST {StudyPlan.DownstreamClasses}, {plan.PerClass} images/class: top-1 vs step (cf. paper Fig. 5){SeedNote}",
             Rows(r => r.Table == 1));
        Plot(Path.Combine(dir, "table3_strategies.png"), $"Recycling strategies: top-1 vs step (cf. paper Table 3){SeedNote}", Rows(r => r.Table == 3 || r.Id == Jet));
        if (Has4) Table4Plot(Path.Combine(dir, "table4_experts.png"));
    }

    int EvalEvery => Math.Max(1, plan.DownstreamSteps / plan.Evaluations);
    string SeedNote => Seeds > 1 ? $", mean and 95 % band over {Seeds} seeds" : "";
    bool Has4 => results.Any(r => r.Run.Table == 4);

    /// <summary>An interval for results.json: one seed has no standard deviation or bounds (null, since JSON has no NaN).</summary>
    static object? Json(Interval? i) => i is null ? null : new { mean = i.Mean, sd = Num(i.StdDev), n = i.N, lo = Num(i.Lo), hi = Num(i.Hi) };
    static double? Num(double x) => double.IsFinite(x) ? x : null;

    /// <summary>"78.12 ± 0.41" (a 95 % half-width) or, with one seed, "78.12"; values in points of accuracy when <paramref name="scale"/> is 100.</summary>
    static string Pm(Interval? i, double scale = 100, string format = "0.00") =>
        i is null ? "–" : i.N < 2 ? F(scale * i.Mean, format) : $"{F(scale * i.Mean, format)} ± {F(scale * i.HalfWidth, format)}";

    /// <summary>"+7.04 [+6.1, +8.0]" for a difference with its interval.</summary>
    static string Delta(Interval? i) =>
        i is null ? "–" : i.N < 2 ? F(100 * i.Mean, "+0.00;-0.00") : $"{F(100 * i.Mean, "+0.00;-0.00")} [{F(100 * i.Lo, "+0.0;-0.0")}, {F(100 * i.Hi, "+0.0;-0.0")}]";

    /// <summary>The paper's claims, each with its interval and whether it holds with 95 % confidence here.</summary>
    List<(string Claim, Interval? Value, string Verdict)> Claims()
    {
        string Verdict(Interval? i, string holds, string reversed) =>
            i is null ? "not measured (a row is missing)"
            : i.N < 2 ? "one seed: no interval, not decided"
            : i.AboveZero ? holds : i.BelowZero ? reversed : "not shown: the 95 % interval includes 0";
        var claims = new List<(string, Interval?, string)>
        {
            ("MoE Jetpack > Soft MoE from scratch (top-1, paired)", Paired(Jet, Soft), Verdict(Paired(Jet, Soft), "holds", "reversed: Soft MoE is better")),
            ("MoE Jetpack > dense upstream-pretrained (top-1, paired)", Paired(Jet, DenseUp), Verdict(Paired(Jet, DenseUp), "holds", "reversed: dense upstream is better")),
            ("importance sampling > random selection (top-1, paired)", Paired(Jet, Random), Verdict(Paired(Jet, Random), "holds", "reversed: random is better")),
        };
        if (Has(Jet) && Has(Soft))
        {
            var (steps, speedUp, missed) = Convergence(Jet);
            string verdict = speedUp is null ? "does not hold: Jetpack never reached Soft MoE's final top-1"
                : missed > 0 ? $"not shown: {missed} of {Seeds} seeds never reached it"
                : speedUp.N < 2 ? "one seed: no interval, not decided"
                : speedUp.Lo > 1 ? $"holds: {F(speedUp.Mean, "0.0")}× fewer steps (95 % [{F(speedUp.Lo, "0.0")}, {F(speedUp.Hi, "0.0")}]; the paper reports 2–8×)"
                : "not shown: the 95 % interval of the speed-up includes 1";
            claims.Add(($"faster convergence: steps to Soft MoE's final top-1 (speed-up = Soft MoE's steps / Jetpack's; evaluations every {EvalEvery} steps)", speedUp, verdict));
        }
        return claims;
    }

    string Markdown()
    {
        var md = new StringBuilder();
        md.AppendLine($"# MoE Jetpack on Fashion-MNIST ({plan.Name} plan{(Seeds > 1 ? $", {Seeds} seeds" : "")})");
        md.AppendLine();
        md.AppendLine($"Upstream: classes {StudyPlan.UpstreamClasses}, predecessor `vit_fmnist_pred` {plan.PredecessorSteps} steps and target `vit_fmnist_t` {plan.TargetSteps} steps of {plan.UpstreamBatch}. "
                    + $"Downstream: classes {StudyPlan.DownstreamClasses}, {plan.PerClass} training images per class, {plan.DownstreamSteps} steps of {plan.DownstreamBatch} for every run; "
                    + $"top-1 on all 5,000 test images of classes {StudyPlan.DownstreamClasses} (curves: the same first {plan.EvalImages:N0}, every {EvalEvery} steps).");
        if (Seeds > 1)
            md.AppendLine($"\nEvery row ran with {Seeds} seeds (data order, init of fresh parts, recycling draw, profiling sample, noise). "
                        + "Values are mean ± the half-width of a 95 % t-interval; Δ columns are paired differences (seed s against seed s) with their 95 % interval, in points.");
        md.AppendLine();

        var claims = Claims();
        if (claims.Any(c => c.Value is not null))                          // not for a study of other rows only (--only table4)
        {
            md.AppendLine($"## Claims with 95 % confidence ({Seeds} seed{(Seeds > 1 ? "s" : "")})");
            md.AppendLine();
            md.AppendLine("| claim | value | verdict |");
            md.AppendLine("|---|---:|---|");
            foreach (var (claim, value, verdict) in claims)
                md.AppendLine($"| {claim} | {(claim.StartsWith("faster", StringComparison.Ordinal) ? Pm(value, 1, "0.0") + "×" : Delta(value))} | {verdict} |");
            md.AppendLine();
        }

        var t1 = Rows(r => r.Table == 1);
        if (t1.Count > 0)
        {
            md.AppendLine("## Table 1 — methods at equal steps");
            md.AppendLine();
            md.AppendLine("| method | model | params (M) | MMACs | top-1 (%) | Δ vs Soft MoE | Δ vs dense upstream | steps to Soft MoE's final top-1 | images/s |");
            md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var id in t1)
            {
                var first = Row(id)[0];
                var (steps, _, missed) = Has(Soft) ? Convergence(id) : (null, null, 0);
                string reach = !Has(Soft) ? "–" : steps is null ? "not reached" : $"{Pm(steps, 1, "0")}{(missed > 0 ? $" ({missed} seed(s) never)" : "")}";
                md.AppendLine($"| {first.Run.Label} | `{first.Run.Model}` | {Params(first.Run.Model)} | {F(FlopCounter.ForwardMacs(ModelRegistry.Get(first.Run.Model)) / 1e6, "0.0")} | "
                            + $"**{Pm(Top1Interval(id))}** | {(id == Soft ? "–" : Delta(Paired(id, Soft)))} | {(id == DenseUp ? "–" : Delta(Paired(id, DenseUp)))} | {reach} | "
                            + $"{F(Row(id).Average(r => r.MedianImagesPerSecond), "0")} |");
            }
            md.AppendLine();
        }

        var t3 = Rows(r => r.Table == 3 || r.Id == Jet);
        if (t3.Any(id => id != Jet))
        {
            md.AppendLine("## Table 3 — recycling strategies (all V-JetMoE-fmnist, same recipe)");
            md.AppendLine();
            md.AppendLine("| strategy | top-1 (%) | Δ vs importance (paired) |");
            md.AppendLine("|---|---:|---:|");
            foreach (var id in t3)
                md.AppendLine($"| {(id == Jet ? "importance sampling (L2), the default" : Row(id)[0].Run.Label)} | {Pm(Top1Interval(id))} | {(id == Jet ? "–" : Delta(Paired(id, Jet)))} |");
            md.AppendLine();
        }

        if (Has4)
        {
            md.AppendLine("## Table 4 — MoE layers × experts (importance-recycled V-JetMoE-fmnist)");
            md.AppendLine();
            md.AppendLine("| MoE in | experts (core/universal) | params (M) | top-1 (%) | step time (ms) |");
            md.AppendLine("|---|---:|---:|---:|---:|");
            foreach (var id in Rows(r => r.Table == 4))
            {
                var row = Row(id);
                var moe = ModelRegistry.Get(row[0].Run.Model).Vit!.Moe!;
                var stepMs = SeedStatistics.Of(row.Select(r => 1000.0 * plan.DownstreamBatch / r.MedianImagesPerSecond).ToList());
                md.AppendLine($"| last {moe.Layers.Length} blocks | {moe.CoreExperts}/{moe.UniversalExperts} | {Params(row[0].Run.Model)} | {Pm(Top1Interval(id))} | {Pm(stepMs, 1, "0")} |");
            }
            md.AppendLine();
            md.AppendLine("![table 4](table4_experts.png)");
            md.AppendLine();
        }

        if (Has(Jet) && Has("jetpack_bf16"))
        {
            var ratio = SeedStatistics.Of(Row(Jet).Join(Row("jetpack_bf16"), a => a.SeedIndex, b => b.SeedIndex, (a, b) => a.MedianImagesPerSecond / b.MedianImagesPerSecond).ToList());
            md.AppendLine("## bf16 policy vs fp32 (MoE Jetpack run)");
            md.AppendLine();
            md.AppendLine($"- step time bf16 / fp32: **{Pm(ratio, 1)}**");
            md.AppendLine($"- top-1 bf16 − fp32: **{Delta(Paired("jetpack_bf16", Jet))} points**");
            md.AppendLine();
        }
        if (notes is { Count: > 0 })
        {
            md.AppendLine("## Notes");
            md.AppendLine();
            foreach (var n in notes) md.AppendLine($"- {n}");
            md.AppendLine();
        }
        md.AppendLine("## Time");
        md.AppendLine();
        md.AppendLine("| stage | seconds |");
        md.AppendLine("|---|---:|");
        foreach (var (stage, s) in stageSeconds) md.AppendLine($"| {stage} | {(s is { } t ? F(t, "0") : "reused (done earlier)")} |");
        md.AppendLine($"| **total** | **{F(totalSeconds, "0")}** |");
        md.AppendLine();
        if (t1.Count > 0) md.AppendLine("![convergence](fig5_convergence.png)").AppendLine();
        if (t3.Count > 0) md.AppendLine("![strategies](table3_strategies.png)");
        return md.ToString();
    }

    static string Params(string model)
    {
        using var m = ModelRegistry.Create(ModelRegistry.Get(model), TorchSharp.torch.META);
        return F(ModelRegistry.ParameterCount(m) / 1e6, "0.00");
    }

    static string F(double x, string format) => x.ToString(format, Inv);

    /// <summary>Top-1 against step per row: the mean over seeds, with its 95 % band where there are two or more.</summary>
    void Plot(string path, string title, IEnumerable<string> ids)
    {
        var plot = new ScottPlot.Plot();
        foreach (var id in ids)
        {
            var row = Row(id);
            var steps = row.SelectMany(r => r.Curve.Select(c => c.Step)).Distinct().Order().ToArray();
            var at = steps.Select(step => row.Select(r => r.Curve.Where(c => c.Step == step).Select(c => (double?)c.Top1).FirstOrDefault())
                                             .OfType<double>().ToList()).ToArray();
            var xs = steps.Select(s => (double)s).ToArray();
            var line = plot.Add.Scatter(xs, at.Select(v => 100 * v.Average()).ToArray());
            line.LegendText = $"{row[0].Run.Label} ({Pm(Top1Interval(id), 100, "0.0")}%)";
            line.LineWidth = id == Jet ? 3 : 1.5f;
            if (row.Count >= 2)
            {
                var bands = at.Select(v => v.Count >= 2 ? SeedStatistics.Of(v) : null).ToArray();
                var fill = plot.Add.FillY(xs, bands.Select((b, k) => 100 * (b?.Lo ?? at[k].Average())).ToArray(),
                                          bands.Select((b, k) => 100 * (b?.Hi ?? at[k].Average())).ToArray());
                fill.FillColor = line.Color.WithAlpha(0.2);
                fill.LineWidth = 0;
            }
        }
        plot.Axes.Bottom.Label.Text = "downstream step";
        plot.Axes.Left.Label.Text = "top-1 (%)";
        plot.Title(title);
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        plot.SavePng(path, 1000, 600);
    }

    /// <summary>Table 4 as a plot: top-1 against core experts, one line per MoE-layer setting, 95 % error bars.</summary>
    void Table4Plot(string path)
    {
        var plot = new ScottPlot.Plot();
        foreach (var group in Rows(r => r.Table == 4).GroupBy(id => ModelRegistry.Get(Row(id)[0].Run.Model).Vit!.Moe!.Layers.Length))
        {
            var points = group.Select(id => (Experts: (double)ModelRegistry.Get(Row(id)[0].Run.Model).Vit!.Moe!.CoreExperts, Top1: Top1Interval(id)))
                              .OrderBy(p => p.Experts).ToArray();
            var line = plot.Add.Scatter(points.Select(p => p.Experts).ToArray(), points.Select(p => 100 * p.Top1.Mean).ToArray());
            line.LegendText = $"MoE in the last {group.Key} blocks";
            foreach (var p in points.Where(p => p.Top1.N >= 2))
            {
                var bar = plot.Add.Line(p.Experts, 100 * p.Top1.Lo, p.Experts, 100 * p.Top1.Hi);
                bar.Color = line.Color;
                bar.LineWidth = 2;
            }
        }
        plot.Axes.Bottom.Label.Text = "core experts per MoE layer (universal = 2×)";
        plot.Axes.Left.Label.Text = "top-1 (%)";
        plot.Title($"Table 4 at Fashion-MNIST scale: top-1 vs experts{SeedNote}");
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        plot.SavePng(path, 900, 550);
    }
}
