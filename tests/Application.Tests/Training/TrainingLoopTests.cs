using Jetpack.Application.Runs;
using Jetpack.Application.Training;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;
using TorchSharp;

namespace Jetpack.Application.Tests.Training;

/// <summary>The one loop's cadences on a real (tiny) trainer: evaluations, checkpoints, stop and checkpoint requests, what observers see.</summary>
public sealed class TrainingLoopTests : IDisposable
{
    static readonly ModelSpec Tiny = new("tiny_loop", Vit: new VitConfig
    {
        ImageSize = 28, PatchSize = 7, InChannels = 1, NumClasses = 10, Dim = 16, Depth = 1, Heads = 2, Pool = PoolKind.Avg,
    });
    const int Images = 24;
    static readonly RunSpec Run = new()
    {
        Data = new RunData { Dataset = "synthetic", SyntheticCount = Images, Augment = false, EvalLimit = 8 },
        Recipe = new TrainerOptions { Steps = 5, GlobalBatch = 4, WarmupSteps = 1, Seed = 5 },
        EvalEvery = 2, CheckpointEvery = 2,
    };

    readonly string dir = Directory.CreateTempSubdirectory("jetpack-loop-").FullName;
    readonly torch.nn.Module<torch.Tensor, torch.Tensor> model;
    readonly Trainer trainer;
    readonly Jetpack.Model.Data.IImageDataset eval;

    public TrainingLoopTests()
    {
        var (train, evalSet) = RunDatasets.Open(Run.Data, Tiny);
        eval = evalSet;
        torch.manual_seed(5);
        model = ModelRegistry.Create(Tiny);
        trainer = new Trainer(Tiny, model, train, Run.Recipe);
    }

    public void Dispose()
    {
        trainer.Dispose();
        model.Dispose();
        Directory.Delete(dir, recursive: true);
    }

    /// <summary>Everything the loop told, in order.</summary>
    sealed class Recorder : ITrainingObserver
    {
        public readonly List<string> Events = [];
        public readonly List<StepReport> Steps = [];
        public void OnStart(long startStep, long stopStep) => Events.Add($"start {startStep}→{stopStep}");
        public void OnEvaluation(long step, EvalResult result, bool wholeSplit) => Events.Add($"eval {step} on {result.Images}{(wholeSplit ? " (whole)" : "")}");
        public void OnCheckpoint(long step, string directory) => Events.Add($"checkpoint {step} {Path.GetFileName(directory)}");
        public void OnStep(StepReport report) { Events.Add($"step {report.Step}"); Steps.Add(report); }
        public void OnEnd(long step, bool completed) => Events.Add($"end {step} {(completed ? "completed" : "stopped")}");
    }

    TrainingLoop Loop(Recorder recorder) => new(trainer, eval, TrainingCadence.Of(Run, Path.Combine(dir, "checkpoint")), [recorder]);

    [Fact]
    public void EvaluatesEveryEvalEveryStepsOnTheLimitAndTheLastStepOnTheWholeSplitAndCheckpointsAtItsCadence()
    {
        var recorder = new Recorder();
        Assert.Equal(5, Loop(recorder).Run());
        Assert.Equal([
            "start 0→5", "step 1",
            "eval 2 on 8", "step 2", "checkpoint 2 checkpoint", "step 3",
            "eval 4 on 8", "step 4", "checkpoint 4 checkpoint",
            $"eval 5 on {Images} (whole)", "step 5", "checkpoint 5 checkpoint", "end 5 completed"], recorder.Events);
        Assert.Equal([null, 8, null, 8, Images], recorder.Steps.Select(s => s.Eval?.Images));
        Assert.All(recorder.Steps, s => Assert.True(s.Seconds > 0 && s.Images == 4 && s.ExchangeSeconds is null));
        Assert.Equal(5, TrainingCheckpoint.ReadManifest(Path.Combine(dir, "checkpoint")).Step);
    }

    [Fact]
    public void UntilStopsWithACheckpointAndNoFinalEvaluation()
    {
        var recorder = new Recorder();
        Assert.Equal(3, Loop(recorder).Run(until: 3));
        Assert.Equal(["start 0→3", "step 1", "eval 2 on 8", "step 2", "checkpoint 2 checkpoint", "step 3", "checkpoint 3 checkpoint", "end 3 stopped"], recorder.Events);
        Assert.Equal(3, TrainingCheckpoint.ReadManifest(Path.Combine(dir, "checkpoint")).Step);
    }

    [Fact]
    public async Task StopAndCheckpointRequestsFromAnotherThreadAreHonouredAfterTheirStep()
    {
        var recorder = new Recorder();
        var loop = Loop(recorder);
        var extra = Path.Combine(dir, "extra");
        Task<long> checkpoint = null!;
        // the requests come from another thread, as WorkerControl's calls do
        await Task.Run(() =>
        {
            checkpoint = loop.Control.RequestCheckpoint(extra, afterStep: 1);
            Assert.Equal(3, loop.Control.RequestStop(afterStep: 3));
        }).WaitAsync(TimeSpan.FromSeconds(10));
        var ran = Task.Run(() => loop.Run());
        Assert.Equal(3, await ran.WaitAsync(TimeSpan.FromMinutes(2)));
        Assert.Equal(1, await checkpoint.WaitAsync(TimeSpan.FromSeconds(1)));
        Assert.Equal(1, TrainingCheckpoint.ReadManifest(extra).Step);
        Assert.Equal(["start 0→5", "step 1", "checkpoint 1 extra", "eval 2 on 8", "step 2", "checkpoint 2 checkpoint", "step 3", "end 3 stopped"], recorder.Events);

        var past = Assert.Throws<InvalidOperationException>(() => loop.Control.RequestStop(2));
        Assert.Contains("past step 2 already (at 3)", past.Message);
        var late = loop.Control.RequestCheckpoint(extra, afterStep: 0);
        loop.Control.FailPending("the job ended (stopped)");
        var failed = await Assert.ThrowsAsync<InvalidOperationException>(() => late.WaitAsync(TimeSpan.FromSeconds(1)));
        Assert.Contains("before step 4", failed.Message);
    }

    [Fact]
    public void WithoutAnEvalSplitNothingIsEvaluated()
    {
        var recorder = new Recorder();
        new TrainingLoop(trainer, null, TrainingCadence.Of(Run, checkpointDir: null), [recorder]).Run(until: 2);
        Assert.Equal(["start 0→2", "step 1", "step 2", "end 2 stopped"], recorder.Events);
    }
}
