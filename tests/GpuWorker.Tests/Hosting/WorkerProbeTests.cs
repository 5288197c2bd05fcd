using Jetpack.GpuWorker.Tests.DataPlane;

namespace Jetpack.GpuWorker.Tests.Hosting;

/// <summary>The Kubernetes probes the worker manifest points at (deploy/k8s/base/worker-statefulset.yaml).</summary>
public class WorkerProbeTests
{
    [Fact]
    public async Task HealthzReadyzAndMetricsAnswerOnTheMetricsPort()
    {
        await using var c = await LoopbackCluster.StartAsync(1);
        using var http = new HttpClient();
        var node = c.Nodes[0];
        Assert.Equal("ok", await http.GetStringAsync($"http://{node.MetricsAddress}/healthz"));
        Assert.Equal("ready", await http.GetStringAsync($"http://{node.MetricsAddress}/readyz"));
        Assert.Contains("jetpack", await http.GetStringAsync($"http://{node.MetricsAddress}/metrics"));
    }
}
