using System.Text.Json;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Coordinator.Tests.Training;
using Jetpack.Protocol.Jobs;
using Jetpack.Protocol.Telemetry;

namespace Jetpack.Coordinator.Tests.Hosting;

/// <summary>
/// Issue 20: the operators' Grafana dashboard (deploy/grafana) against a real Prometheus that scrapes
/// a real coordinator and the two jetpack-worker processes that ran one of its jobs. The dashboard's
/// <c>$job</c> variable comes from <c>jetpack_job_phase</c> (plain job ids); every worker panel's
/// query, with <c>$job</c> set to that value, must return worker series — it returned none while the
/// workers labelled their series <c>job#attempt</c>.
/// </summary>
[Collection(InProcessCoordinators.Name)]
public sealed class DashboardQueriesTests : IAsyncLifetime
{
    readonly DriverCluster cluster = new();
    TestCoordinator coordinator = null!;

    public async Task InitializeAsync() => coordinator = await cluster.Coordinator();

    public async Task DisposeAsync()
    {
        await coordinator.DisposeAsync();
        await cluster.DisposeAsync();
    }

    /// <summary>Every Prometheus expression of the dashboard: (panel title, expression).</summary>
    public static List<(string Panel, string Expr)> Queries(string dashboardPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(dashboardPath));
        var found = new List<(string, string)>();
        void Walk(JsonElement panels)
        {
            foreach (var p in panels.EnumerateArray())
            {
                if (p.TryGetProperty("targets", out var targets))
                    foreach (var t in targets.EnumerateArray())
                        if (t.TryGetProperty("expr", out var e)) found.Add((p.GetProperty("title").GetString()!, e.GetString()!));
                if (p.TryGetProperty("panels", out var inner)) Walk(inner);
            }
        }
        Walk(doc.RootElement.GetProperty("panels"));
        return found;
    }

    [Fact]
    public async Task EveryWorkerPanelOfTheDashboardReturnsSeriesForACoordinatorJob()
    {
        const string job = "dash";
        var launcher = await cluster.Workers(coordinator.Grpc, 2, "w");
        await DriverCluster.WaitAlive(coordinator.Workers, coordinator.Call, "w0", "w1");
        var targets = launcher.MetricsAddresses.Select(a => new Uri($"http://{a}/metrics")).Append(coordinator.Metrics).ToArray();
        using var prometheus = new PrometheusServer(targets);
        await prometheus.WaitReady();

        await coordinator.Submit(cluster.Spec(job, workers: 2, steps: 6, checkpointEvery: 3));
        var done = await Await.Until(() => coordinator.Status(job), s => s.Phase is JobPhase.Completed or JobPhase.Failed, $"job {job} to end", TimeSpan.FromMinutes(5));
        Assert.True(done.Phase == JobPhase.Completed, $"{done.Phase}: {done.Message}");

        // $job as Grafana computes it: label_values(jetpack_job_phase, job_id)
        var phase = await Await.Until(() => prometheus.Query(MetricNames.JobPhase), r => r.Any(s => s.Labels[MetricNames.Labels.Job] == job),
                                      $"{MetricNames.JobPhase} for job {job}", TimeSpan.FromSeconds(30));
        string variable = Assert.Single(phase.Select(s => s.Labels[MetricNames.Labels.Job]).Distinct());

        // the workers' own series carry that plain id, and the attempt as a label of its own
        var loss = await Await.Until(() => prometheus.Query($"{MetricNames.Loss}{{{MetricNames.Labels.Job}=\"{variable}\"}}"), r => r.Count == 2,
                                     $"{MetricNames.Loss} of both ranks under job_id=\"{variable}\"", TimeSpan.FromSeconds(30));
        string attempt = Assert.Single(loss.Select(s => s.Labels[MetricNames.Labels.Attempt]).Distinct());
        Assert.True(int.TryParse(attempt, out int a) && a >= 1, $"attempt label '{attempt}'");
        Assert.Empty(await prometheus.Query($"{{{MetricNames.Labels.Job}=~\".*#.*\"}}"));

        string dashboard = RepoPaths.File("deploy", "grafana", "jetpack-dashboard.json");
        var workerQueries = Queries(dashboard).Where(q => q.Expr.Contains("$job") && !q.Expr.Contains(MetricNames.JobPhase) && !q.Expr.Contains(MetricNames.Recoveries) && !q.Expr.Contains(MetricNames.Growths)).ToList();   // the coordinator's own counters: no series until a job recovers or grows
        Assert.True(workerQueries.Count >= 10, $"only {workerQueries.Count} worker queries found in {dashboard}");
        var empty = new List<string>();
        foreach (var (panel, expr) in workerQueries)
        {
            string promql = expr.Replace("$job", variable);
            // rates need two scrapes of the counter: wait a little for each, then report all empty panels at once
            try { await Await.Until(() => prometheus.Query(promql), r => r.Count > 0, $"panel '{panel}'", TimeSpan.FromSeconds(15)); }
            catch (TimeoutException) { empty.Add($"'{panel}': {promql}"); }
        }
        Assert.True(empty.Count == 0, "dashboard panels without worker series for a coordinator job:\n" + string.Join("\n", empty));
    }

}
