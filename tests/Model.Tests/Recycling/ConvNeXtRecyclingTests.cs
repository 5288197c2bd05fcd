using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Data;
using Jetpack.Model.Recycling;
using Jetpack.Model.Registry;
using Jetpack.Model.Tests.Checkpoints;
using Jetpack.Model.Training;

namespace Jetpack.Model.Tests.Recycling;

/// <summary>ConvNeXt-T → C-JetMoE-F by the same rules (spec §6.3): experts from the block MLPs and norms of
/// stage 3 and 4, the rest from a ConvNeXt-F-width checkpoint where the names and shapes exist.</summary>
public class ConvNeXtRecyclingTests
{
    [Fact]
    public void CJetMoEFExpertsComeFromConvNeXtTBlocks()
    {
        var predSpec = ModelRegistry.Get("convnext_tiny");
        var targetSpec = ModelRegistry.Get("convnext_femto");
        var successor = ModelRegistry.Get("c_jetmoe_f");
        using var dir = new TempDirectory();
        using var pred = ModelRegistry.Create(predSpec);
        using var target = ModelRegistry.Create(targetSpec);
        SafetensorsWriter.Write(dir.File("t.safetensors"), pred.state_dict());
        SafetensorsWriter.Write(dir.File("f.safetensors"), target.state_dict());
        using var predCkpt = DenseCheckpoint.Load(dir.File("t.safetensors"), predSpec);
        using var targetCkpt = DenseCheckpoint.Load(dir.File("f.safetensors"), targetSpec);
        // profile at 64×64: ConvNeXt is convolutional, stage 4 sees 2×2 positions
        using var stats = ActivationProfiler.Profile(predSpec, pred, [torch.randn([2, 3, 64, 64], generator: new Generator(1))]);

        using var r = CheckpointRecycler.Recycle(successor, predSpec, predCkpt.Tensors, targetCkpt.Tensors, stats, new RecycleOptions());
        Assert.Equal(9, r.Layers.Count);                                              // 6 in stage 3, 3 in stage 4
        var state = r.Model.state_dict();
        var layer = r.Layers.Single(l => l.Layer == "stages.3.blocks.1.mlp");
        var h = layer.Hidden[5]; var c = layer.Channels[5];                         // core expert 5 of stage 4
        var w1 = predCkpt.Tensors["stages.3.blocks.1.mlp.fc1.weight"];                // [3072, 768]
        Assert.True(w1.index_select(0, h).index_select(1, c).eq(state["stages.3.blocks.1.mlp.core_experts.vit_fc1.weight"][5]).all().item<bool>());
        Assert.Equal([24, 1536, 384], state["stages.3.blocks.1.mlp.core_experts.vit_fc1.weight"].shape);
        Assert.Equal([48, 384, 384], state["stages.3.blocks.1.mlp.univ_experts.vit_fc1.weight"].shape);
        Assert.Equal([98, 768, 192], state["stages.2.blocks.3.mlp.core_experts.vit_fc1.weight"].shape);
        // non-expert weights from the femto-width checkpoint where they exist (its stage 3 has 6 blocks, ours 9)
        Assert.Equal(Provenance.Target, r.Provenance["stages.2.blocks.5.conv_dw.weight"]);
        Assert.Equal(Provenance.Fresh, r.Provenance["stages.2.blocks.8.conv_dw.weight"]);
        Assert.Equal(Provenance.Target, r.Provenance["stem.0.weight"]);
        Assert.Equal(Provenance.Fresh, r.Provenance["stages.2.blocks.3.mlp.phi"]);
    }

    /// <summary>Issue 19 for ConvNeXt: a request's per-stage experts (8 core + 16 universal, 2 slots, in stage 3's first 3
    /// blocks; stage 4 dense) recycle from ConvNeXt-T and train 2 steps.</summary>
    [Fact]
    public void AConvNeXtWithExpertsFromARequestRecyclesAndTrains()
    {
        var predSpec = ModelRegistry.Get("convnext_tiny");
        var targetSpec = ModelRegistry.Get("convnext_femto");
        var successor = ModelRegistry.Resolve(ModelRequest.FromJson("""{"base": "c_jetmoe_f", "stages": {"2": {"core_experts": 8, "universal_experts": 16, "slots_per_expert": 2, "moe_layers": ["0..2"]}, "3": null}, "num_classes": 4, "image_size": 32}"""));
        torch.manual_seed(3);
        using var pred = ModelRegistry.Create(predSpec);
        using var target = ModelRegistry.Create(targetSpec);
        var predState = pred.state_dict();
        var targetState = target.state_dict();
        using var stats = ActivationProfiler.Profile(predSpec, pred, [torch.randn([2, 3, 64, 64], generator: new Generator(1))]);
        using var r = CheckpointRecycler.Recycle(successor, predSpec, predState, targetState, stats, new RecycleOptions());
        Assert.Equal(["stages.2.blocks.0.mlp", "stages.2.blocks.1.mlp", "stages.2.blocks.2.mlp"], r.Layers.Select(l => l.Layer).Order());
        var state = r.Model.state_dict();
        Assert.Equal([8, 768, 192], state["stages.2.blocks.1.mlp.core_experts.vit_fc1.weight"].shape);
        Assert.Equal([16, 192, 192], state["stages.2.blocks.1.mlp.univ_experts.vit_fc1.weight"].shape);
        Assert.Equal(Provenance.Recycled, r.Provenance["stages.2.blocks.1.mlp.core_experts.vit_fc1.weight"]);
        Assert.DoesNotContain(state.Keys, k => k.StartsWith("stages.3.blocks.0.mlp.core_experts", StringComparison.Ordinal));

        var gen = new Generator(4);
        using var data = new TensorDataset(torch.randn([8, 3, 32, 32], generator: gen), torch.randint(0, 4, [8], generator: gen), 4);
        using var trainer = new Trainer(successor, r.Model, data, new TrainerOptions { Steps = 2, GlobalBatch = 4, WarmupSteps = 1, Mixup = null, Seed = 5 });
        var losses = new[] { trainer.TrainStep().Loss, trainer.TrainStep().Loss };
        Assert.All(losses, l => Assert.True(double.IsFinite(l) && l > 0, $"loss {l}"));
    }
}
