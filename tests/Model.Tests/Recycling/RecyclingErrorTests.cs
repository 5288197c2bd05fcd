using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Models;
using Jetpack.Model.Recycling;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Tests.Recycling;

/// <summary>Mismatched inputs fail with an error that says what is wrong and where.</summary>
public class RecyclingErrorTests(RecyclingFixture f) : IClassFixture<RecyclingFixture>
{
    [Fact]
    public void APredecessorNarrowerThanTheExpertsIsRefused()
    {
        // a successor wider (256) than the predecessor (128) cannot sample its channels from it
        var wide = f.Successor with { Vit = f.Successor.Vit! with { Dim = 256, Heads = 4 } };
        var e = Assert.Throws<ArgumentException>(() => CheckpointRecycler.Recycle(wide, f.PredecessorSpec, f.Predecessor.Tensors, f.Target.Tensors, f.Stats, new RecycleOptions()));
        Assert.Contains("narrower than the successor (width 256)", e.Message);
        Assert.Contains("blocks.3.mlp", e.Message);
    }

    [Fact]
    public void ACheckpointWithMissingKeysIsRefusedWithTheList()
    {
        var tensors = f.Predecessor.Tensors.Where(kv => !kv.Key.StartsWith("blocks.4.mlp.")).ToList();
        var path = f.Dir.File("missing.safetensors");
        SafetensorsWriter.Write(path, tensors);
        var e = Assert.Throws<CheckpointMismatchException>(() => DenseCheckpoint.Load(path, f.PredecessorSpec));
        Assert.Contains("missing.safetensors", e.Message);
        Assert.Contains("blocks.4.mlp.fc1.weight", e.Message);
        Assert.Contains("vit_fmnist_pred", e.Message);
    }

    [Fact]
    public void ACheckpointOfAnotherArchitectureIsRefused()
    {
        var path = f.Dir.File("convnext.safetensors");
        using (var m = ModelRegistry.Create(ModelRegistry.Get("convnext_femto") with { ConvNeXt = ModelRegistry.Get("convnext_femto").ConvNeXt! with { NumClasses = 10 } }))
            SafetensorsWriter.Write(path, m.state_dict());
        var e = Assert.Throws<CheckpointMismatchException>(() => DenseCheckpoint.Load(path, f.PredecessorSpec));
        Assert.Contains("unexpected", e.Message);
        Assert.Contains("stages.0.blocks.0.conv_dw.weight", e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void AWidthMismatchIsReportedPerKey()
    {
        // the target-width checkpoint offered as the predecessor
        var e = Assert.Throws<CheckpointMismatchException>(() => DenseCheckpoint.Load(f.Dir.File("target.safetensors"), f.PredecessorSpec));
        Assert.Contains("mis-shaped", e.Message);
        Assert.Contains("cls_token: file [1, 1, 64], vit_fmnist_pred [1, 1, 128]", e.Message);
    }

    [Fact]
    public void FrameworkPrefixesAreStrippedAndAForeignHeadIsIgnored()
    {
        var tensors = f.Predecessor.Tensors.Select(kv => kv.Key == "head.weight"
                ? new KeyValuePair<string, Tensor>("module.head.weight", torch.zeros(21843, 128))  // an IN-21k head
                : new KeyValuePair<string, Tensor>("model." + kv.Key, kv.Value)).ToList();
        var path = f.Dir.File("prefixed.safetensors");
        SafetensorsWriter.Write(path, tensors);
        using var loaded = DenseCheckpoint.Load(path, f.PredecessorSpec);
        Assert.True(loaded.Report.IsExact);
        Assert.Contains("head.weight", loaded.Ignored);
        Assert.True(loaded.Tensors["blocks.0.mlp.fc1.weight"].eq(f.Predecessor.Tensors["blocks.0.mlp.fc1.weight"]).all().item<bool>());
    }

    [Fact]
    public void AVariantWhoseLayersDoNotFitIsRefused()
    {
        var deeper = f.Successor with { Vit = f.Successor.Vit! with { Depth = 8, Moe = f.Successor.Vit.Moe! with { Layers = [6, 7] } } };
        var e = Assert.Throws<ArgumentException>(() => CheckpointRecycler.Recycle(deeper, f.PredecessorSpec, f.Predecessor.Tensors, f.Target.Tensors, f.Stats, new RecycleOptions()));
        Assert.Contains("depth 8", e.Message);
    }

    [Fact]
    public void StatisticsOfAnotherModelAreRefused()
    {
        var other = ModelRegistry.Get("vit_fmnist_t");
        var e = Assert.Throws<ArgumentException>(() => CheckpointRecycler.Recycle(f.Successor, other, f.Target.Tensors, f.Target.Tensors, f.Stats, new RecycleOptions()));
        Assert.Contains("statistics are of 'vit_fmnist_pred'", e.Message);
    }

    [Fact]
    public void UpcyclingIntoAVariantWithUniversalExpertsIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => f.Recycle(new RecycleOptions { Method = RecycleMethod.SparseUpcycling }));
        Assert.Contains("universal experts", e.Message);
    }

    [Fact]
    public void ImportanceWithoutStatisticsIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => CheckpointRecycler.Recycle(f.Successor, f.PredecessorSpec, f.Predecessor.Tensors, f.Target.Tensors, null, new RecycleOptions()));
        Assert.Contains("needs activation statistics", e.Message);
    }

    [Fact]
    public void UnknownMethodNamesListTheKnownOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => RecycleOptions.ParseMethod("magic"));
        Assert.Contains("importance-l2", e.Message);
    }
}
