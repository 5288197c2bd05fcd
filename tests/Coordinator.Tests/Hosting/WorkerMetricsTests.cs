using Jetpack.Application.Runs;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.WorkerCluster;
using Jetpack.Model.Data;
using Jetpack.Model.Distributed;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;
using Jetpack.Protocol.Telemetry;

namespace Jetpack.Coordinator.Tests.Hosting;

/// <summary>
/// Issue 6: a real Prometheus on loopback scrapes the coordinator and two jetpack-worker processes
/// during a short expert-parallel job; the training loss and the all-to-all byte counter are read
/// back through its HTTP query API and checked against the job's own report and the exchange's shapes.
/// </summary>
[Collection(InProcessCoordinators.Name)]
public sealed class WorkerMetricsTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public async Task PrometheusReadsTheWorkersLossAndAllToAllBytes()
    {
        const string job = "prom-train";
        const int world = 2, steps = 3, globalBatch = 8;
        await using var coordinator = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), new FakeTrainingDriver());
        await using var launcher = await WorkerLauncher.StartAsync(new LaunchOptions { WorldSize = world, JobId = job, ThreadsPerWorker = 1 });
        var targets = launcher.MetricsAddresses.Select(a => new Uri($"http://{a}/metrics")).Append(coordinator.Metrics).ToArray();
        using var prometheus = new PrometheusServer(targets);
        await prometheus.WaitReady();

        var spec = new WorkerJobSpec
        {
            Model = "v_jetmoe_fmnist",
            Data = new RunData { Dataset = "fashion-mnist", Classes = "0-4", MaxPerClass = 8, Augment = false },
            Recipe = new TrainerOptions { Steps = steps, GlobalBatch = globalBatch, WarmupSteps = 1 },
        };
        var outcome = await launcher.RunJobAsync(spec);
        Assert.True(outcome.Completed, outcome.Failure + "\n" + launcher.Report());
        double lastLoss = outcome.Rank0[^1].Loss;

        // the loss of the last step, from each rank (all-reduced: the same on both)
        string loss = $"{MetricNames.Loss}{{{MetricNames.Labels.Job}=\"{job}\"}}";
        var losses = await Await.Until(() => prometheus.Query(loss), r => r.Count == world && r.All(s => Math.Abs(s.Value - lastLoss) < 1e-6),
                                       $"prometheus to return {loss} = {lastLoss} for {world} ranks", TimeSpan.FromSeconds(60));
        Assert.All(losses, s => Assert.True(double.IsFinite(s.Value) && s.Value > 0, $"loss {s.Value}"));
        Assert.Equal(["0", "1"], losses.Select(s => s.Labels[MetricNames.Labels.Rank]).Order());

        // all-to-all bytes: per MoE layer and forward, rank r sends its b_r samples' slots of every peer's
        // experts (Dispatch) and the peer's b_v samples' outputs of its own experts (Return):
        // Σ_r Σ_{v≠r} (b_r·e_v + b_v·e_r) · s · d · 4 bytes (fp32); a training step doubles it (GradDispatch,
        // GradReturn); the workers' final evaluation (the last step, the whole eval split in batches of
        // 256, each split over the ranks) adds its forwards.
        var model = ModelRegistry.Get("v_jetmoe_fmnist");
        var moe = model.Vit!.Moe!;
        int d = model.Vit.Dim, s = moe.SlotsPerExpert;
        var e = Enumerable.Range(0, world).Select(r => (long)ExpertRange.For(moe, world, r).Count).ToArray();
        long Forward(int batch)
        {
            var b = Enumerable.Range(0, world).Select(r => (long)DistributedSampler.RankSlice(batch, world, r).Length).ToArray();
            long bytes = 0;
            for (int r = 0; r < world; r++)
                for (int v = 0; v < world; v++)
                    if (v != r) bytes += (b[r] * e[v] + b[v] * e[r]) * s * d * sizeof(float);
            return bytes * moe.Layers.Length;
        }
        int evalImages = RunDatasets.Open(spec.Data).Eval.Count;
        long evaluation = Enumerable.Range(0, (evalImages + 255) / 256).Sum(i => Forward(Math.Min(256, evalImages - 256 * i)));
        long expected = 2 * Forward(globalBatch) * steps + evaluation;
        string bytes = $"sum({MetricNames.Exported(MetricNames.AllToAllBytes)}{{{MetricNames.Labels.Job}=\"{job}\"}})";
        var total = await Await.Until(() => prometheus.Query(bytes), r => r.Count == 1 && r[0].Value >= expected,
                                      $"prometheus to return {bytes} ≥ {expected}", TimeSpan.FromSeconds(60));
        Assert.Equal(expected, total[0].Value);
        // one series per (rank, layer): bounded labels
        var perLayer = await prometheus.Query($"{MetricNames.Exported(MetricNames.AllToAllBytes)}{{{MetricNames.Labels.Job}=\"{job}\"}}");
        Assert.Equal(world * moe.Layers.Length, perLayer.Count);

        // the other worker instruments are there too, and the coordinator is scraped beside the workers
        foreach (var name in new[] { MetricNames.Exported(MetricNames.AllReduceBytes), MetricNames.SlotDispatchMassMax, MetricNames.CombineEntropy, MetricNames.StepDuration + "_count" })
        {
            var series = await Await.Until(() => prometheus.Query($"{name}{{{MetricNames.Labels.Job}=\"{job}\"}}"), r => r.Count > 0, $"prometheus to return {name}", TimeSpan.FromSeconds(30));
            Assert.All(series, x => Assert.True(double.IsFinite(x.Value) && x.Value > 0, $"{name} {x.Value}"));
        }
        await Await.Until(() => prometheus.Query(MetricNames.WorkersUp), r => r.Count == 1, "the coordinator's workers_up", TimeSpan.FromSeconds(30));
    }
}
