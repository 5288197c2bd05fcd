using Jetpack.Application.Runs;
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

    public string Spec(string name, int workers, long steps, int checkpointEvery) => $"""
        name: {name}
        model: v_jetmoe_fmnist
        workers: {workers}
        deterministic: true
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

    /// <summary>Starts <paramref name="count"/> jetpack-worker processes that register with the coordinator as prefix0, prefix1, …</summary>
    public async Task<WorkerLauncher> Workers(Uri coordinator, int count, string prefix, IReadOnlyDictionary<string, string>? environment = null)
    {
        var launcher = await WorkerLauncher.StartAsync(new LaunchOptions
        {
            WorldSize = count, Coordinator = coordinator, Token = Token, WorkerIdPrefix = prefix, ThreadsPerWorker = 1,
            HeartbeatInterval = TimeSpan.FromSeconds(1), StepDeadline = TimeSpan.FromSeconds(30), Environment = environment,
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
    public static List<double> SingleProcess(string specYaml, string recycled)
    {
        var job = JobSpecReader.Parse(specYaml, "yaml", "reference");
        var spec = job.ResolveModel();
        var (train, _) = RunDatasets.Open(job.Data, spec);
        torch.manual_seed((long)job.Recipe.Seed);
        using var model = ModelRegistry.Create(spec);
        using (var reader = SafetensorsReader.Open(recycled)) ModelCheckpoint.LoadWeights(reader, model, strict: true);
        using var trainer = new Trainer(spec, model, train, job.Recipe);
        return Enumerable.Range(0, (int)job.Recipe.Steps).Select(_ => trainer.TrainStep().Loss).ToList();
    }

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
