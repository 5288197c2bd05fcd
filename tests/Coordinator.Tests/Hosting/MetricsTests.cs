using Jetpack.Coordinator.Tests.Support;
using Jetpack.Protocol.Jobs;
using Jetpack.Protocol.Telemetry;

namespace Jetpack.Coordinator.Tests.Hosting;

/// <summary>The coordinator's /metrics, scraped by a real Prometheus and read back through its query API.</summary>
[Collection(InProcessCoordinators.Name)]
public sealed class MetricsTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public async Task PrometheusScrapesJobPhaseWorkersUpAndHeartbeatAge()
    {
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), new FakeTrainingDriver());
        await c.RegisterWorker("w0");
        await c.Submit(JobSpecs.Yaml("prom-job", JobSpecs.Checkpoint(dir, "p.safetensors", "p")));
        await c.WaitForPhase("prom-job", JobPhase.Completed);

        using var prometheus = new PrometheusServer(c.Metrics);
        await prometheus.WaitReady();
        string phase = $"{MetricNames.JobPhase}{{{MetricNames.Labels.Job}=\"prom-job\"}}";
        var series = await Await.Until(() => prometheus.Query(phase), r => r.Count == 1, $"prometheus to return {phase}", TimeSpan.FromSeconds(30));
        Assert.Equal(6, series[0].Value);                                   // Completed (JobPhase numbers)
        Assert.Equal("jetpack-coordinator", series[0].Labels["job"]);      // the scrape job keeps Prometheus' own label

        var up = await Await.Until(() => prometheus.Query(MetricNames.WorkersUp), r => r.Count == 1, "workers up");
        Assert.Equal(1, up[0].Value);
        var age = await Await.Until(() => prometheus.Query($"{MetricNames.WorkerHeartbeatAge}{{{MetricNames.Labels.Worker}=\"w0\"}}"), r => r.Count == 1, "heartbeat age of w0");
        Assert.InRange(age[0].Value, 0, 30);
        var recyclings = await Await.Until(() => prometheus.Query(MetricNames.Exported(MetricNames.Recyclings)), r => r.Count == 1, "recyclings");
        Assert.Equal(1, recyclings[0].Value);

        // Every query of the Grafana dashboard is valid PromQL for this Prometheus (a syntax error is HTTP 400).
        using var dashboard = System.Text.Json.JsonDocument.Parse(File.ReadAllText(RepoPaths.File("deploy", "grafana", "jetpack-dashboard.json")));
        foreach (var panel in dashboard.RootElement.GetProperty("panels").EnumerateArray().Where(p => p.TryGetProperty("targets", out _)))
            foreach (var target in panel.GetProperty("targets").EnumerateArray())
            {
                string expr = target.GetProperty("expr").GetString()!.Replace("$job", ".*");
                var result = await prometheus.Query(expr);
                if (panel.GetProperty("title").GetString() == "Job phase") Assert.Contains(result, r => r.Labels["job_id"] == "prom-job" && r.Value == 6);
            }
    }


    [Fact]
    public async Task RecoveriesAreCountedPerJob()
    {
        var driver = new FakeTrainingDriver();
        driver.HoldAttempts.Add(2);
        await using var c = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), driver, heartbeatTimeout: TimeSpan.FromMilliseconds(600));
        await c.RegisterWorker("w0");
        await c.Submit(JobSpecs.Yaml("rec-job", JobSpecs.Checkpoint(dir, "p.safetensors", "p")));
        // w0 never heartbeats again: it dies in training, the job recovers, finds no worker and fails.
        var failed = await c.WaitForPhase("rec-job", JobPhase.Failed);
        Assert.Equal(1, failed.Recoveries);
        Assert.StartsWith("recovery: job 'rec-job' needs 1 worker", failed.Message);

        using var http = new HttpClient();
        string text = await http.GetStringAsync(c.Metrics);
        Assert.Contains($"{MetricNames.Exported(MetricNames.Recoveries)}{{otel_scope_name=\"{MetricNames.CoordinatorMeter}\",{MetricNames.Labels.Job}=\"rec-job\"}} 1", text);
        Assert.Contains($"{MetricNames.WorkersUp}{{otel_scope_name=\"{MetricNames.CoordinatorMeter}\"}} 0", text);
    }
}
