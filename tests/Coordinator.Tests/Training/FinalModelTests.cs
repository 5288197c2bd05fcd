using Jetpack.Cli.Commands;
using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Tests.Cli;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Coordinator.Training;
using Jetpack.WorkerCluster;
using Jetpack.Application.Runs;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;
using TorchSharp;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Coordinator.Tests.Training;

/// <summary>
/// A topology-free training checkpoint gathered into one full model (issue 13): what a job ends
/// with (final.safetensors) and what `jetpack export --checkpoint` writes — loadable, of the
/// checkpoint's variant, every tensor equal to the checkpoint's parameters.
/// </summary>
public sealed class FinalModelTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    /// <summary>A real training checkpoint of v_jetmoe_fmnist after one step (world 1), and the model it holds.</summary>
    (string Dir, Dictionary<string, torch.Tensor> Parameters) TrainedCheckpoint()
    {
        var spec = ModelRegistry.Get("v_jetmoe_fmnist");
        var (train, _) = RunDatasets.Open(new RunData { Classes = "0-4", MaxPerClass = 4, Augment = false }, spec);
        using var model = ModelRegistry.Create(spec);
        using var trainer = new Trainer(spec, model, train, new TrainerOptions { Steps = 1, GlobalBatch = 4, WarmupSteps = 0 });
        trainer.TrainStep();
        string ckpt = dir.File("checkpoint");
        trainer.Save(ckpt);
        return (ckpt, model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));
    }

    static void AssertHolds(string path, Dictionary<string, torch.Tensor> expected)
    {
        var (spec, model) = ModelCheckpoint.LoadModel(path);
        using var _ = model;
        Assert.Equal("v_jetmoe_fmnist", spec.Variant);
        var got = model.state_dict();
        Assert.Equal(expected.Keys.Order(), got.Keys.Order());
        foreach (var (key, t) in expected)
            Assert.True(t.eq(got[key]).all().item<bool>(), $"{path}: '{key}' differs from the checkpoint's parameter");
    }

    [Fact]
    public void AJobsFinalModelHoldsTheCheckpointsParametersAndItsIdentity()
    {
        var (ckpt, parameters) = TrainedCheckpoint();
        string path = dir.File("out/final.safetensors");
        var m = FinalModel.Write(ckpt, path, "job-x", expectedStep: 1, eval: new EvalResult(0.7, 0.25, 0.9, 100) { Step = 1 });
        Assert.Equal(1L, m.Step);
        AssertHolds(path, parameters);
        using var reader = SafetensorsReader.Open(path);
        Assert.Equal(("job-x", "1", "0.25", "0.9"), (reader.Metadata[FinalModel.JobKey], reader.Metadata[FinalModel.StepKey],
                                                      reader.Metadata[FinalModel.Top1Key], reader.Metadata[FinalModel.Top5Key]));
        Assert.Empty(Directory.GetFiles(dir.File("out"), "*.tmp-*"));                 // written under a temporary name, then renamed
    }

    [Fact]
    public void ACheckpointOfAnotherStepOrACorruptOneIsRefusedNamingTheFile()
    {
        var (ckpt, _) = TrainedCheckpoint();
        var wrongStep = Assert.Throws<InvalidDataException>(() => FinalModel.Write(ckpt, dir.File("a.safetensors"), expectedStep: 5));
        Assert.Contains("step 1, the job ended at step 5", wrongStep.Message);
        File.WriteAllBytes(Path.Combine(ckpt, TrainingCheckpoint.ReplicatedFile), [1, 2, 3]);
        var corrupt = Assert.Throws<InvalidDataException>(() => FinalModel.Write(ckpt, dir.File("b.safetensors")));
        Assert.Contains(TrainingCheckpoint.ReplicatedFile, corrupt.Message);
        Assert.False(File.Exists(dir.File("a.safetensors")) || File.Exists(dir.File("b.safetensors")));
    }

    [Fact]
    public void ExportOfACheckpointDirectoryWritesTheFullModelAndEvalMeasuresIt()
    {
        var (ckpt, parameters) = TrainedCheckpoint();
        string model = dir.File("exported.safetensors");
        var (code, output) = CliProcess.Jetpack("export", "--checkpoint", ckpt, "--out", model);
        Assert.True(code == ExitCodes.Ok, output);
        Assert.Contains("v_jetmoe_fmnist, step 1", output);
        AssertHolds(model, parameters);

        (code, output) = CliProcess.Jetpack("eval", "--model", model, "--dataset", "fashion-mnist", "--classes", "5-9", "--limit", "40", "--json", "--threads", "1");
        Assert.True(code == ExitCodes.Ok, output);
        using var json = System.Text.Json.JsonDocument.Parse(output.Trim().Split('\n')[^1]);
        var e = json.RootElement;
        Assert.Equal(40, e.GetProperty("images").GetInt32());
        Assert.InRange(e.GetProperty("top1").GetDouble(), 0, 1);
        Assert.True(e.GetProperty("top5").GetDouble() >= e.GetProperty("top1").GetDouble());
        Assert.True(e.GetProperty("loss").GetDouble() > 0);
    }

    [Fact]
    public void ExportAndEvalRefuseBadInputWithExitCode2()
    {
        var (code, output) = CliProcess.Jetpack("export", "--checkpoint", dir.File("nowhere"), "--out", dir.File("x.safetensors"));
        Assert.True(code == ExitCodes.Usage, output);
        Assert.Contains("nowhere", output);
        (code, output) = CliProcess.Jetpack("export", "--checkpoint", dir.Path);
        Assert.True(code == ExitCodes.Usage, output);
        Assert.Contains("--out is required", output);
        (code, output) = CliProcess.Jetpack("eval", "--model", dir.File("missing.safetensors"));
        Assert.True(code == ExitCodes.Usage, output);
        Assert.Contains("missing.safetensors", output);
        string dense = dir.File("dense.safetensors");
        using (var m = ModelRegistry.Create("vit_fmnist_t")) ModelCheckpoint.Save(dense, ModelRegistry.Get("vit_fmnist_t"), m);
        (code, output) = CliProcess.Jetpack("eval", "--model", dense, "--dataset", "cifar100");
        Assert.True(code == ExitCodes.Usage, output);
        Assert.Contains("--root is required for cifar100", output);
        string config = dir.File("run.yaml");
        File.WriteAllText(config, "model: vit_fmnist_t\ndata:\n  classes: \"5-9\"\n");
        (code, output) = CliProcess.Jetpack("eval", "--model", dense, "--config", config, "--classes", "0-4");
        Assert.True(code == ExitCodes.Usage, output);
        Assert.Contains("--config names the data already", output);
        (code, output) = CliProcess.Jetpack("eval", "--model", dense, "--config", config, "--limit", "20", "--threads", "1");   // the config's classes
        Assert.True(code == ExitCodes.Ok, output);
        Assert.Contains("on 20 test images of fashion-mnist classes 5-9", output);
    }
}
