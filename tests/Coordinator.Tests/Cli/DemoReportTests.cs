using System.Text.Json;
using Jetpack.Cli.Demo;
using Jetpack.Cli.Study;
using Jetpack.Coordinator.Tests.Support;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>The demo's report plots every evaluation of a run's metrics.jsonl (the coordinator job's periodic ones), not only the last.</summary>
public sealed class DemoReportTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void EveryEvaluationOfTheJobsMetricsIsAPointOfTheCurve()
    {
        var run = DemoPlan.Jetpack;
        string metrics = Path.Combine(dir.Path, "runs", run.Id, "metrics.jsonl");
        Directory.CreateDirectory(Path.GetDirectoryName(metrics)!);
        File.WriteAllLines(metrics, Enumerable.Range(1, 6).Select(step => JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["step"] = step, ["loss"] = 2.0 / step, ["images_per_s"] = 100.0,
        }.Concat(step % 2 == 0 ? new Dictionary<string, object> { ["top1"] = step / 10.0, ["top5"] = 0.9, ["eval_loss"] = 1.0 } : []).ToDictionary())));

        var result = RunResult.Read(run, metrics);
        new DemoReport(DemoPlan.Smoke, 2, [result], new Dictionary<string, double> { [run.Id] = 1 }, new Dictionary<string, double?>(), 2).Write(dir.Path);

        using var json = JsonDocument.Parse(File.ReadAllText(dir.File("results.json")));
        var curve = json.RootElement.GetProperty("runs")[0].GetProperty("curve").EnumerateArray().Select(p => (p.GetProperty("step").GetInt64(), p.GetProperty("top1").GetDouble())).ToList();
        Assert.Equal([(2L, 0.2), (4L, 0.4), (6L, 0.6)], curve);
        Assert.Equal(0.6, json.RootElement.GetProperty("runs")[0].GetProperty("top1").GetDouble());
        Assert.True(new FileInfo(dir.File("convergence.png")).Length > 0);
    }
}
