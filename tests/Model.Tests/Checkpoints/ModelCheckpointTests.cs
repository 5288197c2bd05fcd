using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>A model checkpoint records its identity and refuses to load into another model.</summary>
public class ModelCheckpointTests
{
    static readonly ModelSpec Moe = ModelRegistry.Get("v_jetmoe_fmnist");

    [Fact]
    public void RecordsVariantConfigVersionAndExpertCounts()
    {
        using var dir = new TempDirectory();
        using var model = ModelRegistry.Create(Moe);
        ModelCheckpoint.Save(dir.File("m.safetensors"), Moe, model);
        using var reader = SafetensorsReader.Open(dir.File("m.safetensors"));
        Assert.Equal("1", reader.Metadata[ModelCheckpoint.FormatKey]);
        Assert.Equal("v_jetmoe_fmnist", reader.Metadata[ModelCheckpoint.VariantKey]);
        Assert.Equal("blocks.3.mlp=24+48x1;blocks.4.mlp=24+48x1;blocks.5.mlp=24+48x1", reader.Metadata[ModelCheckpoint.ExpertsKey]);
        Assert.Equal(Moe.ConfigJson(), ModelCheckpoint.ReadSpec(dir.File("m.safetensors")).ConfigJson());
    }

    [Fact]
    public void RefusesACheckpointOfAnotherVariantAndSaysWhy()
    {
        using var dir = new TempDirectory();
        var soft = ModelRegistry.Get("soft_moe_fmnist");
        using (var model = ModelRegistry.Create(soft)) ModelCheckpoint.Save(dir.File("soft.safetensors"), soft, model);
        using var target = ModelRegistry.Create(Moe);
        var e = Assert.Throws<CheckpointMismatchException>(() => ModelCheckpoint.Load(dir.File("soft.safetensors"), Moe, target));
        Assert.Contains("soft.safetensors", e.Message);
        Assert.Contains("saved for another model", e.Message);
        Assert.Contains("moe.kind: file \"Soft\", model \"Sphero\"", e.Message);     // names the differing fields
        Assert.Contains("moe.core_experts: file 49, model 24", e.Message);
        Assert.DoesNotContain("drop_path", e.Message);                                   // regularisation is not compared
    }

    [Fact]
    public void RefusesChangedExpertCountsEvenUnderTheSameName()
    {
        using var dir = new TempDirectory();
        var fewer = Moe with { Vit = Moe.Vit! with { Moe = Moe.Vit.Moe! with { CoreExperts = 12 } } };
        using (var model = ModelRegistry.Create(fewer)) ModelCheckpoint.Save(dir.File("m.safetensors"), fewer, model);
        using var target = ModelRegistry.Create(Moe);
        var e = Assert.Throws<CheckpointMismatchException>(() => ModelCheckpoint.Load(dir.File("m.safetensors"), Moe, target));
        Assert.Contains("moe.core_experts: file 12, model 24", e.Message);
    }

    [Fact]
    public void ListsMissingUnexpectedAndMisShapedKeys()
    {
        using var dir = new TempDirectory();
        using var model = ModelRegistry.Create(Moe);
        var state = model.state_dict();
        var tensors = state.Where(kv => kv.Key != "head.bias")                               // missing
            .Select(kv => kv.Key == "blocks.3.mlp.phi" ? new KeyValuePair<string, Tensor>(kv.Key, torch.zeros(3, 3)) : kv) // mis-shaped
            .Append(new KeyValuePair<string, Tensor>("blocks.9.mlp.fc1.weight", torch.zeros(2)))  // unexpected
            .ToList();
        SafetensorsWriter.Write(dir.File("bad.safetensors"), tensors);
        using var reader = SafetensorsReader.Open(dir.File("bad.safetensors"));
        using var target = ModelRegistry.Create(Moe);
        var e = Assert.Throws<CheckpointMismatchException>(() => ModelCheckpoint.LoadWeights(reader, target, strict: true));
        Assert.Contains("bad.safetensors", e.Message);
        Assert.Contains("missing (1): head.bias", e.Message);
        Assert.Contains("unexpected (1): blocks.9.mlp.fc1.weight", e.Message);
        Assert.Contains("mis-shaped (1): blocks.3.mlp.phi: file [3, 3], model [72, 1, 64]", e.Message);

        var report = ModelCheckpoint.LoadWeights(reader, target, strict: false);
        Assert.False(report.IsExact);
        Assert.Equal(["head.bias"], report.Missing);
    }

    [Fact]
    public void RefusesAPlainSafetensorsFileAsAModelCheckpoint()
    {
        using var dir = new TempDirectory();
        SafetensorsWriter.Write(dir.File("plain.safetensors"), [new("w", torch.zeros(2))]);
        var e = Assert.Throws<InvalidDataException>(() => ModelCheckpoint.ReadSpec(dir.File("plain.safetensors")));
        Assert.Contains("plain.safetensors", e.Message);
        Assert.Contains("jetpack.format_version", e.Message);
    }
}
