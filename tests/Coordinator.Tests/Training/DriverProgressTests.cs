using Jetpack.Coordinator.Jobs;
using Jetpack.Coordinator.Training;
using Jetpack.Application.Runs;

namespace Jetpack.Coordinator.Tests.Training;

/// <summary>What the driver makes of rank 0's Progress (its evaluation) and which device it asks the workers for.</summary>
public sealed class DriverProgressTests
{
    static readonly JobSpec Spec = new() { Recipe = new() { Steps = 40, GlobalBatch = 16 } };

    [Fact]
    public void AnEvaluatedStepCarriesItsEvaluationToTheGrain()
    {
        var p = GrpcTrainingDriver.ProgressOf(new Jetpack.Protocol.Wire.Progress { Step = 20, Loss = 1.5, StepSeconds = 0.5, Evaluated = true, EvalLoss = 0.8, Top1 = 0.7, Top5 = 0.95, EvalImages = 500 }, Spec);
        Assert.Equal((20L, 40L, 1.5, 32.0), (p.Step, p.TotalSteps, p.Loss, p.ImagesPerSecond));
        Assert.NotNull(p.Eval);
        Assert.Equal((20L, 0.8, 0.7, 0.95, 500), (p.Eval.Step, p.Eval.Loss, p.Eval.Top1, p.Eval.Top5, p.Eval.Images));
        Assert.Null(GrpcTrainingDriver.ProgressOf(new Jetpack.Protocol.Wire.Progress { Step = 21, Loss = 1.4, StepSeconds = 0.5, Top1 = 0.9 }, Spec).Eval);   // not evaluated: no numbers
    }

    [Fact]
    public void TheJobsDeviceGoesToTheWorkersElseTheirDefault()
    {
        // declared once (RunSpec.Device): the job's value reaches StartJob's spec by the copy constructor and survives the wire
        var given = new Jetpack.Application.Runs.WorkerJobSpec(Spec with { Device = "cuda:1" });
        Assert.Equal("cuda:1", Jetpack.Application.Runs.WorkerJobSpec.Parse(given.ToJson()).Device);
        Assert.Null(new Jetpack.Application.Runs.WorkerJobSpec(Spec).Device);          // the worker then trains on RunSpec.WorkerDefaultDevice
        Assert.Equal("cpu", Jetpack.Application.Runs.RunSpec.WorkerDefaultDevice);
        var e = Assert.Throws<RunSpecException>(() => JobSpecValidator.Validate(JobSpecReader.Parse("name: d\nworkers: 1\ndevice: gpu0\nrecycle:\n  from: /dev/null\n  method: random\n", "yaml", "d.yaml"), "d.yaml"));
        Assert.Contains("device", e.Message);
    }
}
