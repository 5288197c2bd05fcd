using Jetpack.Application.Runs;
using Jetpack.Application.Training;
using Jetpack.Model.Moe;
using System.Text.Json;
using Jetpack.Coordinator.Jobs;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Coordinator.Training;
using Jetpack.WorkerCluster;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;
using Jetpack.Protocol.Jobs;
using Jetpack.Protocol.Security;
using TorchSharp;

namespace Jetpack.Coordinator.Tests.Training;

/// <summary>
/// What the driver tests share: Fashion-MNIST-sized dense checkpoints to recycle, a cluster token,
/// a job spec small enough for a loaded 2-core machine (v_jetmoe_fmnist, deterministic, 8 images a
/// step), worker processes that join a coordinator, and the single-process reference run.
/// </summary>
public sealed class DriverCluster : IAsyncDisposable
{
    public TempDir Dir { get; } = new();
    public ClusterToken Token { get; } = ClusterToken.Generate();
    public string Pred { get; }
    public string Target { get; }
    readonly List<WorkerLauncher> launchers = [];

    public DriverCluster()
    {
        Pred = Dir.File("pred.safetensors");
        Target = Dir.File("target.safetensors");
        using (var m = ModelRegistry.Create("vit_fmnist_pred")) SafetensorsWriter.Write(Pred, m.state_dict());
        using (var m = ModelRegistry.Create("vit_fmnist_t")) SafetensorsWriter.Write(Target, m.state_dict());
    }

    /// <param name="expertParallel">parallel.expert_parallel (G), or null for the default G = workers</param>
    public string Spec(string name, int workers, long steps, int checkpointEvery, int? expertParallel = null) => $"""
        name: {name}
        model: v_jetmoe_fmnist
        workers: {workers}
        deterministic: true{(expertParallel is { } g ? $"\nparallel: {{ expert_parallel: {g} }}" : "")}
        recycle:
          from: {Pred}
          target: {Target}
          method: random
          seed: 5
        data:
          dataset: fashion-mnist
          classes: "0-4"
          max_per_class: 40
          augment: false
        recipe:
          steps: {steps}
          global_batch: 8
          warmup_steps: 2
          learning_rate: 0.002
          layer_decay: 0.6
          seed: 11
        checkpoint_every: {checkpointEvery}
        """;

    /// <summary>The real coordinator host with the real training driver, this cluster's token, a 15 s heartbeat timeout and 60 s to acquire workers.</summary>
    /// <param name="tls">mutual TLS on every plane (null: cleartext)</param>
    public Task<TestCoordinator> Coordinator(ClusterTls? tls = null) =>
        TestCoordinator.StartAsync(Dir.File("data"), heartbeatTimeout: TimeSpan.FromSeconds(15),
            configure: o => { o.ClusterToken = Token.Value; o.Tls = tls; }, acquireTimeout: TimeSpan.FromSeconds(60));

    /// <summary>Starts <paramref name="count"/> jetpack-worker processes that register with the coordinator as prefix0, prefix1, …</summary>
    public async Task<WorkerLauncher> Workers(Uri coordinator, int count, string prefix, IReadOnlyDictionary<string, string>? environment = null, ClusterTls? tls = null)
    {
        var launcher = await WorkerLauncher.StartAsync(new LaunchOptions
        {
            WorldSize = count, Coordinator = coordinator, Token = Token, WorkerIdPrefix = prefix, ThreadsPerWorker = 1,
            HeartbeatInterval = TimeSpan.FromSeconds(1), StepDeadline = TimeSpan.FromSeconds(30), Environment = environment, Tls = tls,
        });
        launchers.Add(launcher);
        return launcher;
    }

    /// <summary>Waits until the coordinator lists these workers alive.</summary>
    public static Task WaitAlive(WorkerRegistry.WorkerRegistryClient registry, Grpc.Core.CallOptions call, params string[] ids) =>
        Await.Until(async () => (await registry.ListWorkersAsync(new ListWorkersRequest(), call)).Workers.Where(w => w.Alive).Select(w => w.WorkerId).ToHashSet(),
                    alive => ids.All(alive.Contains), $"workers {string.Join(", ", ids)} to register", TimeSpan.FromSeconds(60));

    /// <summary>Rank 0's loss per step as the driver logged it (metrics.jsonl of the job's output directory).</summary>
    public static List<(long Step, double Loss)> Losses(string outDir) =>
        File.ReadAllLines(Path.Combine(outDir, GrpcTrainingDriver.MetricsFile)).Where(l => l.Length > 0)
            .Select(l => JsonDocument.Parse(l).RootElement).Select(e => (e.GetProperty("step").GetInt64(), e.GetProperty("loss").GetDouble())).ToList();

    public static List<JsonElement> Attempts(string outDir) =>
        File.ReadAllLines(Path.Combine(outDir, GrpcTrainingDriver.AttemptsFile)).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    /// <summary>The same job in this one process (the single-process trainer, `jetpack train`'s path) from the recycled checkpoint.</summary>
    public static List<double> SingleProcess(string specYaml, string recycled) => SingleProcessWithRouting(specYaml, recycled).Losses;

    /// <summary>As <see cref="SingleProcess"/>, with every step's routing summary per MoE layer (what metrics.jsonl writes).</summary>
    public static (List<double> Losses, List<List<RoutingSummary>> Routing) SingleProcessWithRouting(string specYaml, string recycled)
    {
        var job = JobSpecReader.Parse(specYaml, "yaml", "reference");
        var spec = job.ResolveModel();
        var (train, _) = RunDatasets.Open(job.Data, spec);
        torch.manual_seed((long)job.Recipe.Seed);
        using var model = ModelRegistry.Create(spec);
        using (var reader = SafetensorsReader.Open(recycled)) ModelCheckpoint.LoadWeights(reader, model, strict: true);
        var routers = model.modules().OfType<SpheroMoE>().ToList();
        foreach (var m in routers) m.CollectStatistics = true;
        using var trainer = new Trainer(spec, model, train, job.Recipe);
        var losses = new List<double>();
        var routing = new List<List<RoutingSummary>>();
        for (int i = 0; i < job.Recipe.Steps; i++)
        {
            losses.Add(trainer.TrainStep().Loss);
            routing.Add(routers.Select(m => RoutingSummary.Of(m.LastStatistics!)).ToList());
        }
        return (losses, routing);
    }

    /// <summary>
    /// Every logged step's routing (metrics.jsonl "routing") equals the single process's: the same layers and
    /// top expert ids, shares and entropies within 1e-5 relative (the ranks' statistics are merged by an fp32
    /// all-reduce, one rounding per number; measured in DriverEndToEndTests' output), and each line stays bounded:
    /// at most <see cref="RoutingSummary.TopExperts"/> experts per layer and 1 KiB per layer.
    /// Returns the largest relative deviation met (for the test's output).
    /// </summary>
    public static double AssertSameRouting(IReadOnlyList<List<RoutingSummary>> expected, string outDir, string what)
    {
        double worst = 0;
        void Close(double expected, double got, string what)
        {
            double deviation = Math.Abs(expected - got) / Math.Max(Math.Abs(expected), 1e-12);
            worst = Math.Max(worst, deviation);
            Assert.True(Math.Abs(expected - got) <= 1e-5 * Math.Abs(expected) + 1e-12, $"{what}: {got:R} vs single process {expected:R}");
        }
        var lines = File.ReadAllLines(Path.Combine(outDir, GrpcTrainingDriver.MetricsFile)).Where(l => l.Length > 0).ToList();
        Assert.NotEmpty(lines);
        foreach (var line in lines)
        {
            var root = JsonDocument.Parse(line).RootElement;
            long step = root.GetProperty("step").GetInt64();
            Assert.True(root.TryGetProperty("routing", out var routing), $"{what}: step {step} has no routing: {line}");
            var want = expected[(int)step - 1];
            Assert.Equal(want.Count, routing.GetArrayLength());
            Assert.True(line.Length <= 1024 * (want.Count + 1), $"{what}: step {step}'s line is {line.Length} characters");
            foreach (var (layer, w) in routing.EnumerateArray().Zip(want))
            {
                string at = $"{what}: step {step} layer {w.Layer}";
                Assert.Equal((w.Layer, w.Experts), (layer.GetProperty("layer").GetInt32(), layer.GetProperty("experts").GetInt32()));
                Close(w.MaxLoadShare, layer.GetProperty("max_load_share").GetDouble(), $"{at} max_load_share");
                Close(w.LoadBalance, layer.GetProperty("load_balance").GetDouble(), $"{at} load_balance");
                Close(w.CombineEntropy, layer.GetProperty("combine_entropy").GetDouble(), $"{at} combine_entropy");
                var top = layer.GetProperty("top_experts").EnumerateArray().Select(t => (t[0].GetInt32(), t[1].GetDouble())).ToList();
                Assert.True(top.Count == w.Top.Count && top.Count <= RoutingSummary.TopExperts, $"{at}: {top.Count} top experts, expected {w.Top.Count}");
                foreach (var ((id, share), (wid, wshare)) in top.Zip(w.Top))
                    Close(wshare, share, $"{at} top expert {wid} (got {id})");
                // ids may swap only between experts whose shares tie within the tolerance
                Assert.True(top.Zip(w.Top).All(p => p.First.Item1 == p.Second.Expert || Math.Abs(p.First.Item2 - p.Second.Share) <= 1e-5 * p.Second.Share),
                            $"{at}: top experts [{string.Join(", ", top.Select(t => t.Item1))}] vs single process [{string.Join(", ", w.Top.Select(t => t.Expert))}]");
            }
        }
        return worst;
    }

    /// <summary>Every step's routing as a metrics.jsonl wrote it (e.g. a single-process `jetpack train`'s).</summary>
    public static List<List<RoutingSummary>> RoutingOf(string outDir) =>
        File.ReadAllLines(Path.Combine(outDir, GrpcTrainingDriver.MetricsFile)).Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement)
            .Select(root => root.GetProperty("routing").EnumerateArray().Select(l => new RoutingSummary(
                l.GetProperty("layer").GetInt32(), l.GetProperty("experts").GetInt32(), l.GetProperty("max_load_share").GetDouble(),
                l.GetProperty("load_balance").GetDouble(), l.GetProperty("combine_entropy").GetDouble(),
                l.GetProperty("top_experts").EnumerateArray().Select(t => (t[0].GetInt32(), t[1].GetDouble())).ToList())).ToList()).ToList();


    /// <summary>Every step logged, each within rtol 1e-4 of the single process (fp32; the engine's standing proof measured ≤ 1.1e-7).</summary>
    public static void AssertSameLosses(IReadOnlyList<double> expected, IReadOnlyList<(long Step, double Loss)> got, string what)
    {
        Assert.Equal(Enumerable.Range(1, expected.Count).Select(i => (long)i), got.Select(g => g.Step));
        AssertLoggedLossesMatch(expected, got, what);
    }

    /// <summary>The steps that were logged (in order, without repeats), each within rtol 1e-4 of the single process.</summary>
    public static void AssertLoggedLossesMatch(IReadOnlyList<double> expected, IReadOnlyList<(long Step, double Loss)> got, string what)
    {
        Assert.True(got.Zip(got.Skip(1)).All(p => p.First.Step < p.Second.Step), $"{what}: steps out of order: {string.Join(", ", got.Select(g => g.Step))}");
        foreach (var (step, loss) in got)
            Assert.True(Math.Abs(expected[(int)step - 1] - loss) <= 1e-4 * Math.Abs(expected[(int)step - 1]),
                $"{what}: loss of step {step}: {loss:R} vs single process {expected[(int)step - 1]:R}");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var l in launchers) await l.DisposeAsync();
        Dir.Dispose();
    }
}
