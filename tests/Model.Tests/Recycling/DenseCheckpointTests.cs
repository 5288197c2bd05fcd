using TorchSharp;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Checkpoints.Pickle;
using Jetpack.Model.Models;
using Jetpack.Model.Recycling;

namespace Jetpack.Model.Tests.Recycling;

/// <summary>Dense checkpoints as users have them: torch.save files (with framework prefixes) and
/// safetensors, written by Debian's PyTorch (Checkpoints/Pickle/Fixtures/make_fixtures.py).</summary>
public class DenseCheckpointTests
{
    // The fixture's ViT: width 8, 2 blocks, 8×8 images in 4×4 patches, 4 classes, token pooling.
    static readonly ModelSpec Micro = new("vit_micro", Vit: new VitConfig { ImageSize = 8, PatchSize = 4, Dim = 8, Depth = 2, Heads = 2, NumClasses = 4 });

    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Checkpoints", "Pickle", "Fixtures", name);

    [Fact]
    public void APthCheckpointLoadsByTimmNamesAndEqualsItsSafetensorsTwin()
    {
        using var pth = DenseCheckpoint.Load(Fixture("vit_micro_state_dict.pth"), Micro);
        using var st = DenseCheckpoint.Load(Fixture("vit_micro.safetensors"), Micro);
        Assert.True(pth.Report.IsExact);
        Assert.Equal(st.Tensors.Keys.Order(), pth.Tensors.Keys.Order());
        foreach (var (key, t) in st.Tensors)
            Assert.True(t.eq(pth.Tensors[key]).all().item<bool>(), key);
    }

    [Fact]
    public void AWrappedCheckpointWithModulePrefixesIsUnwrapped()
    {
        using var wrapped = DenseCheckpoint.Load(Fixture("wrapped.pth"), Micro);
        Assert.True(wrapped.Report.IsExact);
        Assert.Contains("blocks.1.mlp.fc2.weight", wrapped.Tensors.Keys);
    }

    [Theory]
    [InlineData("malicious.pth", "os.system")]
    [InlineData("malicious_eval.pth", "builtins.eval")]
    public void AMaliciousPickleIsRefusedAndNothingRuns(string file, string global)
    {
        var e = Assert.Throws<UnsafePickleException>(() => DenseCheckpoint.Load(Fixture(file), Micro));
        Assert.Contains(global, e.Message);
        Assert.Contains(file, e.Message);
    }

    [Fact]
    public void AnUnknownFileTypeIsRefused()
    {
        var path = Path.Combine(Path.GetTempPath(), $"jetpack-{Guid.NewGuid():N}.npz");
        File.WriteAllBytes(path, [1, 2, 3]);
        try
        {
            var e = Assert.Throws<ArgumentException>(() => DenseCheckpoint.Load(path, Micro));
            Assert.Contains(".npz", e.Message);
        }
        finally { File.Delete(path); }
    }
}
