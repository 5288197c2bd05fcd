using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Recycling;

namespace Jetpack.Model.Tests.Recycling;

/// <summary>
/// Issue 12, item 3: a recycle is a function of its inputs and <see cref="RecycleOptions.Seed"/> —
/// fresh parameters too (router φ, head), whatever state torch's global generator is in — and it
/// leaves that global generator as it found it.
/// </summary>
public class RecyclingSeedTests(RecyclingFixture f) : IClassFixture<RecyclingFixture>
{
    static bool BitEqual(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void TheSameSeedGivesABitIdenticalStateDictFreshParametersIncluded()
    {
        torch.manual_seed(1);
        using var a = f.Recycle(new RecycleOptions { Seed = 5 });
        torch.manual_seed(2);                                    // a caller's global stream must not matter
        using var b = f.Recycle(new RecycleOptions { Seed = 5 });
        var sa = a.Model.state_dict(); var sb = b.Model.state_dict();
        Assert.Equal(sa.Keys, sb.Keys);
        Assert.Contains(a.Provenance, p => p.Value == Provenance.Fresh);
        foreach (var key in sa.Keys)
            Assert.True(BitEqual(sa[key], sb[key]), $"'{key}' ({a.Provenance[key]}) differs between two recycles with seed 5");
    }

    [Fact]
    public void AnotherSeedGivesOtherFreshParameters()
    {
        using var a = f.Recycle(new RecycleOptions { Seed = 5 });
        using var c = f.Recycle(new RecycleOptions { Seed = 6 });
        var sa = a.Model.state_dict(); var sc = c.Model.state_dict();
        foreach (var key in new[] { "blocks.3.mlp.phi", "head.weight" })
        {
            Assert.Equal(Provenance.Fresh, a.Provenance[key]);
            Assert.False(BitEqual(sa[key], sc[key]), $"'{key}' is the same for seeds 5 and 6");
        }
    }

    [Fact]
    public void TheCallersGlobalRandomStreamIsLeftAsItWas()
    {
        torch.manual_seed(11);
        using var expected = torch.rand(4);
        torch.manual_seed(11);
        using (f.Recycle(new RecycleOptions { Seed = 5 })) { }
        using var actual = torch.rand(4);
        Assert.True(BitEqual(expected, actual), "recycling moved the global generator");
    }
}
