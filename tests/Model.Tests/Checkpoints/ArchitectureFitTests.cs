using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>A checkpoint fits a model when the architecture matches; regularisation is not compared (issue 19).</summary>
public class ArchitectureFitTests
{
    static readonly ModelSpec Moe = ModelRegistry.Get("v_jetmoe_fmnist");

    /// <summary>What `deterministic: true` builds (RunSpec.WithoutRandomness): every regulariser off.</summary>
    static ModelSpec Quiet(ModelSpec s) => s with
    {
        Vit = s.Vit! with { DropPathRate = 0, DropRate = 0, Moe = s.Vit.Moe! with { ExpertDropout = 0, MoeDropPathRate = 0, NoiseStd = 0 } },
    };

    [Fact]
    public void ARecycledCheckpointLoadsIntoTheDeterministicModel()
    {
        // The repro of issue 19: init: a v_jetmoe_fmnist checkpoint, deterministic: true — refused before only because dropout differed.
        using var dir = new TempDirectory();
        torch.manual_seed(1);
        using (var saved = ModelRegistry.Create(Moe)) ModelCheckpoint.Save(dir.File("recycled.safetensors"), Moe, saved);
        using var model = ModelRegistry.Create(Quiet(Moe));
        Assert.Null(ModelCheckpoint.Load(dir.File("recycled.safetensors"), Quiet(Moe), model));
        using var reader = SafetensorsReader.Open(dir.File("recycled.safetensors"));
        using var phi = reader.ReadTensor("blocks.3.mlp.phi", CPU);
        Assert.True(phi.equal(model.state_dict()["blocks.3.mlp.phi"]).all().item<bool>());
        Assert.Equal(ModelRegistry.ParameterCount(model).ToString(), reader.Metadata[ModelCheckpoint.ParametersKey]);
    }

    [Fact]
    public void AMismatchNamesTheDifferingFieldsOnly()
    {
        var other = Moe with { Vit = Moe.Vit! with { DropPathRate = 0.3, Moe = Moe.Vit.Moe! with { SlotsPerExpert = 2, Layers = [4, 5], ExpertDropout = 0.1 } } };
        var fit = ArchitectureFit.Compare(Moe, other);
        Assert.Equal(["moe.layers: file [3,4,5], model [4,5]", "moe.slots_per_expert: file 1, model 2"], fit.Differences.Order());
        Assert.True(ArchitectureFit.Compare(Moe, Quiet(Moe) with { Variant = "renamed" }).Fits);   // names and regularisation are not the architecture
    }

    [Fact]
    public void AnotherClassCountReinitialisesTheHeadWithAWarningAndLoadsTheRestStrictly()
    {
        using var dir = new TempDirectory();
        torch.manual_seed(2);
        using (var saved = ModelRegistry.Create(Moe)) ModelCheckpoint.Save(dir.File("m.safetensors"), Moe, saved);
        var five = Moe with { Vit = Moe.Vit! with { NumClasses = 5 } };
        torch.manual_seed(3);
        using var model = ModelRegistry.Create(five);
        using var freshHead = model.state_dict()["head.weight"].clone();
        var warning = ModelCheckpoint.Load(dir.File("m.safetensors"), five, model);
        Assert.Contains("head was saved for 10 classes, the model has 5", warning);
        var state = model.state_dict();
        Assert.True(state["head.weight"].equal(freshHead).all().item<bool>());                     // re-initialised, not loaded
        using var reader = SafetensorsReader.Open(dir.File("m.safetensors"));
        using var fc = reader.ReadTensor("blocks.4.mlp.core_experts.vit_fc1.weight", CPU);
        Assert.True(fc.equal(state["blocks.4.mlp.core_experts.vit_fc1.weight"]).all().item<bool>());

        // the head plus anything else: refused, naming both fields
        var wider = five with { Vit = five.Vit! with { Moe = five.Vit.Moe! with { CoreExperts = 12 } } };
        using var other = ModelRegistry.Create(wider);
        var e = Assert.Throws<CheckpointMismatchException>(() => ModelCheckpoint.Load(dir.File("m.safetensors"), wider, other));
        Assert.Contains("num_classes: file 10, model 5", e.Message);
        Assert.Contains("moe.core_experts: file 24, model 12", e.Message);
    }
}
