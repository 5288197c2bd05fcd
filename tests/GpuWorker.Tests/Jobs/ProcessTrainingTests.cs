using Jetpack.Protocol.Wire;
using Jetpack.Application.Runs;
using Jetpack.Application.Training;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;
using Jetpack.GpuWorker.DataPlane;
using Jetpack.GpuWorker.Jobs;
using Jetpack.WorkerCluster;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;
using Xunit.Abstractions;
using Jetpack.Protocol.Channels;

namespace Jetpack.GpuWorker.Tests.Jobs;

/// <summary>
/// The standing proof of the engine between real processes (DESIGN.md): with dropout, routing noise
/// and drop path off, N = 1, 2, 3 jetpack-worker processes (gRPC exchange and ring all-reduce on
/// loopback) give the single-process trainer's losses and final parameters on the same global
/// batch (rtol 1e-4, fp32); a checkpoint of 3 processes resumes on 2 without changing the run.
/// 3 divides neither the 5 core / 7 universal experts nor the micro-batch of 7.
/// </summary>
public class ProcessTrainingTests(ITestOutputHelper output)
{
    const int Steps = 5;
    const double Tolerance = 1e-4;

    internal static readonly ModelSpec Tiny = new("tiny_fmnist_expert_parallel", Vit: new VitConfig
    {
        ImageSize = 28, PatchSize = 7, InChannels = 1, NumClasses = 10, Dim = 32, Depth = 3, Heads = 2, Pool = PoolKind.Avg,
        Moe = new MoeConfig
        {
            Kind = MoeKind.Sphero, Layers = [1, 2], CoreExperts = 5, UniversalExperts = 7,
            ExpertDropout = 0, MoeDropPathRate = 0, NoiseStd = 0,
        },
    });

    internal static readonly WorkerJobSpec Spec = new()
    {
        ModelSpecJson = JsonSerializer.Serialize(Tiny, ModelSpec.Json),
        Data = new RunData { Dataset = "fashion-mnist", MaxPerClass = 6, Augment = false },
        Recipe = new TrainerOptions
        {
            Steps = Steps, GlobalBatch = 14, Accumulation = 2, LearningRate = 2e-3, WarmupSteps = 2, ClipNorm = 0.5,
            LayerDecay = 0.6, LabelSmoothing = 0.1, Mixup = null, Seed = 23,
        },
        CheckpointEvery = 1000,
    };

    /// <summary>The single-process run, exactly as `jetpack train` builds it (seed, then the model).</summary>
    static (List<double> Losses, Dictionary<string, Tensor> Final) Single(int steps)
    {
        var (train, _) = RunDatasets.Open(Spec.Data);
        torch.manual_seed((long)Spec.Recipe.Seed);
        using var model = ModelRegistry.Create(Tiny);
        using var trainer = new Trainer(Tiny, model, train, Spec.Recipe);
        var losses = Enumerable.Range(0, steps).Select(_ => trainer.TrainStep().Loss).ToList();
        return (losses, model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));
    }

    /// <summary>The full model of a topology-free checkpoint, loaded in this process.</summary>
    static Dictionary<string, Tensor> Load(string checkpoint)
    {
        var (train, _) = RunDatasets.Open(Spec.Data);
        using var model = ModelRegistry.Create(Tiny);
        using var trainer = new Trainer(Tiny, model, train, Spec.Recipe);
        trainer.Restore(checkpoint);
        return model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
    }

    async Task<List<double>> Workers(int world, string checkpoint, string? resumeFrom = null, long until = 0, DataPlaneTransport transport = DataPlaneTransport.Grpc,
                                     int? expertParallel = null)
    {
        await using var launcher = await WorkerLauncher.StartAsync(new LaunchOptions
        {
            WorldSize = world, ThreadsPerWorker = 1, JobId = $"equivalence-{world}", StepDeadline = TimeSpan.FromSeconds(60), DataPlane = transport,
        });
        var outcome = await launcher.RunJobAsync(Spec with { CheckpointDir = checkpoint, Parallel = new RunParallel { ExpertParallel = expertParallel } },
                                                resumeFrom, until).WaitAsync(TimeSpan.FromMinutes(4));
        Assert.True(outcome.Completed, $"{outcome.Failure}\n{launcher.Report()}");
        for (int r = 1; r < world; r++)
            Assert.Equal(outcome.Rank0.Select(p => p.Loss), outcome.Progress[r].Select(p => p.Loss));   // all-reduced: identical on every rank
        var p0 = outcome.Rank0;
        output.WriteLine($"{world} processes: step s {string.Join(", ", p0.Select(p => p.StepSeconds.ToString("F3")))}; exchange s {string.Join(", ", p0.Select(p => p.ExchangeSeconds.ToString("F3")))}; all-reduce s {string.Join(", ", p0.Select(p => p.AllReduceSeconds.ToString("F3")))}");
        return p0.Select(p => p.Loss).ToList();
    }

    void AssertSameRun((List<double> Losses, Dictionary<string, Tensor> Final) expected, List<double> losses, Dictionary<string, Tensor> final, string what)
    {
        double lossDev = expected.Losses.Zip(losses, (a, b) => Math.Abs(a - b) / Math.Abs(a)).Max();
        double paramDev = expected.Final.Max(kv => RelativeDeviation(final[kv.Key], kv.Value));
        output.WriteLine($"{what}: max relative loss deviation {lossDev:g3}, max relative parameter deviation {paramDev:g3}; losses {string.Join(", ", losses.Select(l => l.ToString("F5")))}");
        Assert.Equal(expected.Losses.Count, losses.Count);
        for (int i = 0; i < losses.Count; i++)
            Assert.True(Math.Abs(expected.Losses[i] - losses[i]) <= Tolerance * Math.Abs(expected.Losses[i]),
                $"{what}: loss of step {i + 1}: {losses[i]:R} vs single process {expected.Losses[i]:R}");
        Assert.Equal(expected.Final.Keys.Order(), final.Keys.Order());
        foreach (var (key, t) in expected.Final)
            Assert.True(RelativeDeviation(final[key], t) <= Tolerance, $"{what}: {key} deviates by {RelativeDeviation(final[key], t):g3} (relative)");
    }

    /// <summary>max |a − b| / max(1e-3, max |b|).</summary>
    static double RelativeDeviation(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        Assert.Equal(b.shape, a.shape);
        if (a.numel() == 0) return 0;
        return (a - b).abs().max().item<float>() / Math.Max(1e-3, b.abs().max().item<float>());
    }

    [Theory]
    [InlineData(1, DataPlaneTransport.Grpc)]
    [InlineData(2, DataPlaneTransport.Grpc)]
    [InlineData(3, DataPlaneTransport.Grpc)]
    [InlineData(3, DataPlaneTransport.Tcp)]
    public async Task NWorkerProcessesTrainLikeOneProcess(int world, DataPlaneTransport transport)
    {
        var single = Single(Steps);
        Assert.True(single.Losses.Distinct().Count() == Steps, "the losses should change from step to step");
        var dir = Directory.CreateTempSubdirectory("jetpack-equiv-").FullName;
        try
        {
            var ckpt = Path.Combine(dir, "checkpoint");
            var losses = await Workers(world, ckpt, transport: transport);
            Assert.Equal(world, TrainingCheckpoint.ReadManifest(ckpt).WorldSize);
            AssertSameRun(single, losses, Load(ckpt), $"{world} worker processes ({transport})");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>The coordinator's scatter: this process slices the seeded full model per rank and sends each slice with LoadShard.</summary>
    [Fact]
    public async Task ShardsScatteredWithLoadShardTrainLikeOneProcess()
    {
        const int world = 2;
        var single = Single(Steps);
        torch.manual_seed((long)Spec.Recipe.Seed);
        using var full = ModelRegistry.Create(Tiny);
        var state = full.state_dict();
        var dir = Directory.CreateTempSubdirectory("jetpack-scatter-").FullName;
        try
        {
            await using var launcher = await WorkerLauncher.StartAsync(new LaunchOptions { WorldSize = world, ThreadsPerWorker = 1, JobId = "scatter" });
            // a shard with a foreign key is refused by name when the job starts
            await ShardSender.SendAsync(launcher.Control(0), [new("not.a.parameter", zeros(3))], Protocol.Codec.WireLimits.Default);
            var bad = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => launcher.Control(0).StartJobAsync(new Protocol.Wire.StartJobRequest
            {
                JobId = "scatter", SpecJson = (Spec with { InitFromLoadedShard = true }).ToJson(),
            }).ResponseAsync);
            Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, bad.StatusCode);
            Assert.Contains("unexpected: [not.a.parameter]", bad.Status.Detail);
            Assert.Contains("missing: [", bad.Status.Detail);

            for (int r = 0; r < world; r++)
            {
                var part = Model.Distributed.ExpertKeys.Slice(Tiny, state, world, r);
                var reply = await ShardSender.SendAsync(launcher.Control(r), part, Protocol.Codec.WireLimits.Default);
                Assert.Equal(part.Count, reply.Tensors);
            }
            var ckpt = Path.Combine(dir, "checkpoint");
            var outcome = await launcher.RunJobAsync(Spec with { InitFromLoadedShard = true, CheckpointDir = ckpt }).WaitAsync(TimeSpan.FromMinutes(4));
            Assert.True(outcome.Completed, $"{outcome.Failure}\n{launcher.Report()}");
            AssertSameRun(single, outcome.Rank0.Select(p => p.Loss).ToList(), Load(ckpt), "2 processes from scattered shards");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>
    /// A worker killed mid-training: the others end their job within the deadline with an error naming it and the phase.
    /// The deadline (9 s) is longer than the peers' liveness timeout (6 s), as in production (60 s): a survivor whose
    /// part of the phase with the dead rank was already done waits on another survivor that gave the step up, and learns
    /// of the dead rank from the liveness check. With a 5 s deadline it named only the other survivor (CI, 2026-12-06).
    /// </summary>
    [Fact]
    public async Task AWorkerKilledDuringTrainingFailsTheOthersNamingIt()
    {
        var deadline = TimeSpan.FromSeconds(9);
        Assert.True(deadline > new Jetpack.GpuWorker.DataPlane.LivenessOptions().Timeout);
        await using var launcher = await WorkerLauncher.StartAsync(new LaunchOptions { WorldSize = 3, ThreadsPerWorker = 1, JobId = "kill", StepDeadline = deadline });
        var killedAt = new TaskCompletionSource<System.Diagnostics.Stopwatch>(TaskCreationOptions.RunContinuationsAsynchronously);
        var run = launcher.RunJobAsync(Spec with { Recipe = Spec.Recipe with { Steps = 10_000 } }, onRank0: p =>
        {
            if (p.Step == 2 && !killedAt.Task.IsCompleted)
            {
                launcher.KillAsync(2).GetAwaiter().GetResult();
                killedAt.SetResult(System.Diagnostics.Stopwatch.StartNew());
            }
        });
        var outcome = await run.WaitAsync(TimeSpan.FromMinutes(2));
        var sinceKill = (await killedAt.Task).Elapsed;
        output.WriteLine(string.Join("\n", outcome.Ranks));
        Assert.False(outcome.Completed);
        for (int r = 0; r < 2; r++)
        {
            Assert.Equal(RunEnd.Failed, outcome.Ranks[r].End);
            Assert.StartsWith("rank " + r, outcome.Ranks[r].Reason);
            Assert.Contains("rank 2", outcome.Ranks[r].Reason);
            Assert.Matches("Dispatch|Return|all-reduce", outcome.Ranks[r].Reason);
        }
        Assert.Equal(RunEnd.Failed, outcome.Ranks[2].End);
        Assert.Contains("lost contact", outcome.Ranks[2].Reason);
        Assert.Contains("process exited with code", outcome.Ranks[2].Reason);
        Assert.True(sinceKill < deadline + TimeSpan.FromSeconds(10), $"the survivors needed {sinceKill.TotalSeconds:F1} s after the kill (deadline {deadline.TotalSeconds} s)");
        Assert.False(launcher.Workers[0].HasExited);                           // a failed job does not take the worker down
    }

    /// <summary>Records the loop's evaluations.</summary>
    sealed class Evaluations : ITrainingObserver
    {
        public readonly List<(long Step, EvalResult Result)> Seen = [];
        public void OnEvaluation(long step, EvalResult result, bool wholeSplit) => Seen.Add((step, result));
    }

    /// <summary>
    /// The workers evaluate during the run (every eval_every steps on eval_limit images, the last step
    /// on the whole split), distributed over the ranks — 3 ranks split the 256-image eval batches
    /// unevenly: the numbers equal the single-process loop's evaluations at the same steps.
    /// </summary>
    [Fact]
    public async Task WorkersEvaluateLikeOneProcessAtTheSameSteps()
    {
        var spec = Spec with { EvalEvery = 2, Data = Spec.Data with { EvalLimit = 300 } };
        var (train, eval) = RunDatasets.Open(spec.Data);
        torch.manual_seed((long)spec.Recipe.Seed);
        using var model = ModelRegistry.Create(Tiny);
        using var trainer = new Trainer(Tiny, model, train, spec.Recipe);
        var single = new Evaluations();
        new TrainingLoop(trainer, eval, TrainingCadence.Of(spec, checkpointDir: null), [single]).Run();
        Assert.Equal([2L, 4L, 5L], single.Seen.Select(e => e.Step));
        Assert.Equal([300, 300, eval.Count], single.Seen.Select(e => e.Result.Images));

        await using var launcher = await WorkerLauncher.StartAsync(new LaunchOptions { WorldSize = 3, ThreadsPerWorker = 1, JobId = "evaluations", StepDeadline = TimeSpan.FromSeconds(60) });
        var outcome = await launcher.RunJobAsync(spec).WaitAsync(TimeSpan.FromMinutes(4));
        Assert.True(outcome.Completed, $"{outcome.Failure}\n{launcher.Report()}");
        for (int r = 0; r < 3; r++)
        {
            var evaluated = outcome.Progress[r].Where(p => p.Evaluated).ToList();
            Assert.Equal(single.Seen.Select(e => e.Step), evaluated.Select(p => p.Step));
            foreach (var ((step, expected), p) in single.Seen.Zip(evaluated))
            {
                output.WriteLine($"rank {r} step {step}: loss {p.EvalLoss:F6} vs {expected.Loss:F6}, top-1 {p.Top1:F4} vs {expected.Top1:F4}, top-5 {p.Top5:F4} vs {expected.Top5:F4}");
                Assert.Equal(expected.Images, p.EvalImages);
                Assert.True(Math.Abs(p.EvalLoss - expected.Loss) <= Tolerance * Math.Abs(expected.Loss), $"rank {r} step {step}: eval loss {p.EvalLoss:R} vs single process {expected.Loss:R}");
                // an image whose top logits tie within fp32 rounding may flip: at most one image's worth
                Assert.True(Math.Abs(p.Top1 - expected.Top1) <= 1.0 / expected.Images + 1e-9, $"rank {r} step {step}: top-1 {p.Top1:R} vs single process {expected.Top1:R}");
                Assert.True(Math.Abs(p.Top5 - expected.Top5) <= 1.0 / expected.Images + 1e-9, $"rank {r} step {step}: top-5 {p.Top5:R} vs single process {expected.Top5:R}");
            }
        }
    }

    [Fact]
    public async Task ACheckpointOfThreeProcessesResumesOnTwo()
    {
        var single = Single(Steps);
        var dir = Directory.CreateTempSubdirectory("jetpack-resume-").FullName;
        try
        {
            var ckpt = Path.Combine(dir, "checkpoint");
            var first = await Workers(3, ckpt, until: 3);
            var manifest = TrainingCheckpoint.ReadManifest(ckpt);
            Assert.Equal((3, 3L), (manifest.WorldSize, manifest.Step));
            var second = await Workers(2, ckpt, resumeFrom: ckpt);
            Assert.Equal(2, TrainingCheckpoint.ReadManifest(ckpt).WorldSize);
            AssertSameRun(single, first.Concat(second).ToList(), Load(ckpt), "3 processes → 2 processes");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>
    /// world = G × R between processes (issue 19): 4 workers as 2 expert groups × 2 replicas over the
    /// TCP data plane train like one process; its checkpoint (2 expert files) resumes on 4 workers
    /// with G = 4 over gRPC, and the run still equals the uninterrupted single process.
    /// </summary>
    [Fact]
    public async Task FourWorkersAsTwoExpertGroupsTrainLikeOneProcessAndResumeWithAnotherLayout()
    {
        var single = Single(Steps);
        var dir = Directory.CreateTempSubdirectory("jetpack-layout-").FullName;
        try
        {
            var ckpt = Path.Combine(dir, "checkpoint");
            var first = await Workers(4, ckpt, until: 3, transport: DataPlaneTransport.Tcp, expertParallel: 2);
            var manifest = TrainingCheckpoint.ReadManifest(ckpt);
            Assert.Equal((4, 2, 2, 3L), (manifest.WorldSize, manifest.ExpertParallel, manifest.ExpertFiles.Count, manifest.Step));
            var second = await Workers(4, ckpt, resumeFrom: ckpt, expertParallel: 4);
            Assert.Equal(4, TrainingCheckpoint.ReadManifest(ckpt).ExpertParallel);
            AssertSameRun(single, first.Concat(second).ToList(), Load(ckpt), "4 processes G = 2 (TCP) → 4 processes G = 4");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
