using Jetpack.Application.Runs;
using Jetpack.Cli.Commands;
using Jetpack.Coordinator.Jobs;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>`model:` and `--model` accept a registry name, a mapping or a file holding one (issues 18, 19).</summary>
public sealed class ModelSpecFormsTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    const string Mapping = "{base: v_jetmoe_fmnist, core_experts: 12, universal_experts: 24, slots_per_expert: 2, moe_layers: [4..5]}";

    [Fact]
    public void AMappingInARunSpecResolvesWithAutoClassesFromTheData()
    {
        var path = dir.File("run.yaml");
        File.WriteAllText(path, "model:\n  base: v_jetmoe_fmnist\n  core_experts: 12\n  slots_per_expert: 3\n  moe_layers: [3, 5]\n  num_classes: auto\ndata: { classes: 5-9 }\n");
        var spec = TrainCommand.Load(path).ResolveModel();
        var moe = spec.Vit!.Moe!;
        Assert.Equal((12, 48, 3, 5), (moe.CoreExperts, moe.UniversalExperts, moe.SlotsPerExpert, spec.Vit.NumClasses));
        Assert.Equal([3, 5], moe.Layers);
        Assert.Equal("v_jetmoe_fmnist{core_experts=12,slots_per_expert=3,moe_layers=3+5,num_classes=5}", spec.Variant);
    }

    [Fact]
    public void AModelFileIsInlinedRelativeToTheSpecSoTheCoordinatorGetsTheMapping()
    {
        Directory.CreateDirectory(dir.File("models"));
        File.WriteAllText(dir.File("models/wide.yaml"), Mapping + "\n");
        var pred = JobSpecs.Checkpoint(dir, "pred.safetensors", "pred");
        File.WriteAllText(dir.File("job.yaml"), $"name: wide\nmodel: models/wide.yaml\nrecycle: {{ from: {pred}, method: random }}\n");
        var job = JobSpecReader.Load(dir.File("job.yaml"));
        Assert.Equal(12, job.Model.CoreExperts);
        var sent = JobSpecReader.Parse(JobSpecReader.ToJson(job), "json", "sent");                    // what submit sends
        Assert.Equal(job.Model, sent.Model);
        static string Id(ModelSpec s) => s.Variant + s.ConfigJson();
        Assert.Equal(Id(job.ResolveModel()), Id(ModelArgument.Resolve(dir.File("models/wide.yaml"))));   // --model file
        Assert.Equal(Id(job.ResolveModel()), Id(ModelArgument.Resolve(Mapping)));                      // --model inline
        Assert.Equal(Id(ModelRegistry.Get("v_jetmoe_t")), Id(ModelArgument.Resolve("v_jetmoe_t")));   // --model name
    }

    [Theory]
    [InlineData("model: {base: v_jetmoe_fmnist, core_experts: -3}", "model.core_experts", "must be in 0..65,536, got -3")]
    [InlineData("model: {base: v_jetmoe_fmnist, moe_layers: [3..9]}", "model.moe_layers", "block 6 is outside blocks 0..5")]
    [InlineData("model: {base: v_jetmoe_fmnist, num_classes: 0}", "model.num_classes", "must be 'auto' or an integer")]
    [InlineData("model: nope", "model", "unknown model variant 'nope'")]
    [InlineData("model: {base: v_jetmoe_fmnist, experts: 3}", "model.experts", "unknown field")]
    [InlineData("model: [1, 2]", "model", "must be a variant name or a mapping")]
    [InlineData("model: missing.yaml", "model", "model file not found")]
    public void ErrorsNameTheFieldInsideTheMapping(string line, string field, string problem)
    {
        var path = dir.File("bad.yaml");
        File.WriteAllText(path, line + "\n");
        var e = Assert.ThrowsAny<ArgumentException>(() => TrainCommand.Load(path));
        string actualField = e switch { RunSpecException r => r.Field, _ => "" };
        Assert.True(field == actualField, $"field '{actualField}' in: {e.Message}");
        Assert.Contains(problem, e.Message);
        Assert.Contains("bad.yaml", e.Message);
    }

    [Fact]
    public void ModelOptionErrorsNameTheOptionAndTheField()
    {
        var e = Assert.Throws<RunSpecException>(() => ModelArgument.Resolve("{base: v_jetmoe_t, slots_per_expert: 99}"));
        Assert.Equal("--model: slots_per_expert: must be in 1..64, got 99", e.Message);
        e = Assert.Throws<RunSpecException>(() => ModelArgument.Resolve("v_nope"));
        Assert.Equal("base", e.Field);
        e = Assert.Throws<RunSpecException>(() => ModelArgument.Resolve("{base: c_jetmoe_f, stages: {2: {slots_per_expert: 99}}}"));
        Assert.Equal("--model: stages.2.slots_per_expert: must be in 1..64, got 99", e.Message);
    }

    [Fact]
    public void AConvNeXtsStagesAreWrittenInYamlWithIntegerKeys()
    {
        var spec = ModelArgument.Resolve("{base: c_jetmoe_f, stages: {2: {core_experts: 8, moe_layers: [0..2]}, 3: null}}");
        Assert.Equal(8, spec.ConvNeXt!.StageMoe[2]!.CoreExperts);
        Assert.Equal([0, 1, 2], spec.ConvNeXt.StageMoe[2]!.Layers);
        Assert.Null(spec.ConvNeXt.StageMoe[3]);
    }

    /// <summary>
    /// End to end, as a user would: recycle any configuration with --model, then `jetpack train` with
    /// `deterministic: true`, `init:` that checkpoint and a model file with num_classes: auto on 5 classes —
    /// the repro (refused before for differing dropout) plus the head of another class count.
    /// </summary>
    [Fact]
    public void RecycleAMappingThenTrainItDeterministicallyOnOtherClassesAndEvaluateWithoutFlags()
    {
        using (var pred = ModelRegistry.Create("vit_fmnist_pred")) SafetensorsWriter.Write(dir.File("pred.safetensors"), pred.state_dict());
        using (var target = ModelRegistry.Create("vit_fmnist_t")) SafetensorsWriter.Write(dir.File("target.safetensors"), target.state_dict());
        var (code, output) = CliProcess.Jetpack("recycle", "--model", Mapping, "--method", "random",
            "--from", dir.File("pred.safetensors"), "--target", dir.File("target.safetensors"), "--out", dir.File("moe.safetensors"));
        Assert.True(code == 0, output);
        Assert.Contains("12 core (hidden 256) + 24 universal (hidden 64) experts × 2 slot(s)", output);

        File.WriteAllText(dir.File("model.yaml"), Mapping.TrimEnd('}') + ", num_classes: auto}\n");
        File.WriteAllText(dir.File("run.yaml"), $$"""
            model: model.yaml
            init: {{dir.File("moe.safetensors")}}
            deterministic: true
            data: { classes: 5-9, max_per_class: 8, eval_limit: 20, augment: false }
            recipe: { steps: 2, global_batch: 8, warmup_steps: 1 }
            eval_every: 2
            out: {{dir.File("out")}}
            """);
        (code, output) = CliProcess.Jetpack("train", "--config", dir.File("run.yaml"));
        Assert.True(code == 0, output);
        Assert.Contains("head was saved for 10 classes, the model has 5", output);
        Assert.Contains("M parameters", output);

        var (spec, model) = ModelCheckpoint.LoadModel(dir.File("out/final.safetensors"));
        using (model)
        {
            Assert.Equal((12, 24, 2, 5), (spec.Vit!.Moe!.CoreExperts, spec.Vit.Moe.UniversalExperts, spec.Vit.Moe.SlotsPerExpert, spec.Vit.NumClasses));
            using var reader = SafetensorsReader.Open(dir.File("out/final.safetensors"));
            Assert.Equal(ModelRegistry.ParameterCount(model).ToString(), reader.Metadata[ModelCheckpoint.ParametersKey]);
        }
        (code, output) = CliProcess.Jetpack("eval", "--model", dir.File("out/final.safetensors"), "--dataset", "fashion-mnist", "--classes", "5-9", "--limit", "20");
        Assert.True(code == 0, output);
    }
}
