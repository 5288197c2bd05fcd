using Jetpack.Application.Runs;
using Jetpack.Cli.Commands;
using Jetpack.Coordinator.Jobs;
using Jetpack.Coordinator.Tests.Support;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>`jetpack train --config` reads a <see cref="RunSpec"/>; a job spec is the same run fields, flat, plus the job's.</summary>
public sealed class TrainConfigTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    const string Run = "model: v_jetmoe_fmnist\ndata:\n  classes: 5-9\n  eval_limit: 50\nrecipe:\n  steps: 20\n  global_batch: 8\neval_every: 5\ndeterministic: true\n";

    [Fact]
    public void ATrainConfigIsARunSpecWithTheDefaultOutAndItsDeterministicSwitch()
    {
        var path = dir.File("run.yaml");
        File.WriteAllText(path, Run);
        var config = TrainCommand.Load(path);
        Assert.Equal((RunSpec.DefaultOut, 5, 50, "5-9"), (config.Out, config.EvalEvery, config.Data.EvalLimit, config.Data.Classes));
        var moe = config.ResolveModel().Vit!.Moe!;
        Assert.Equal((0.0, 0.0, 0.0), (moe.NoiseStd, moe.ExpertDropout, moe.MoeDropPathRate));
        Assert.NotEqual(0.0, (config with { Deterministic = false }).ResolveModel().Vit!.Moe!.NoiseStd);
    }

    [Fact]
    public void AJobSpecCarriesTheSameRunFieldsAndRefusesInit()
    {
        var pred = JobSpecs.Checkpoint(dir, "pred.safetensors", "pred");
        string job = $"name: fmnist-a\nworkers: 2\nrecycle:\n  from: {pred}\n  profile_fashion_mnist: true\n" + Run;
        var spec = JobSpecReader.Parse(job, "yaml", "job.yaml");
        JobSpecValidator.Validate(spec, "job.yaml");
        var run = JobSpecReader.ParseAs<RunSpec>(Run, "yaml", "run.yaml", RunSpec.FieldsHint);
        Assert.Equal(run, new RunSpec
        {
            Model = spec.Model, Init = spec.Init, Data = spec.Data, Recipe = spec.Recipe, EvalEvery = spec.EvalEvery,
            CheckpointEvery = spec.CheckpointEvery, Out = spec.Out, Deterministic = spec.Deterministic,
        });

        var e = Assert.Throws<JobSpecException>(() => JobSpecValidator.Validate(spec with { Init = pred }, "job.yaml"));
        Assert.Equal("init", e.Field);
        var bad = Assert.Throws<JobSpecException>(() => JobSpecValidator.Validate(spec with { Data = spec.Data with { EvalLimit = 0 } }, "job.yaml"));
        Assert.Equal(("data.eval_limit", "job.yaml: data.eval_limit: must be ≥ 1, got 0"), (bad.Field, bad.Message));
    }
}
