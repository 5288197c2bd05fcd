using TorchSharp;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Tests.Registry;

/// <summary>Parameter counts of the real modules against spec §6.1 / paper Table 4. Built on the
/// "meta" device, so even the 1.4B-parameter Soft MoE-S allocates no storage.</summary>
public class ParameterCountTests
{
    [Theory]
    [InlineData("v_jetmoe_t", 265.4)]
    [InlineData("v_jetmoe_t_l11_12", 92.3)]
    [InlineData("v_jetmoe_t_l9_12", 178.8)]
    [InlineData("v_jetmoe_t_l5_12", 352.0)]
    [InlineData("v_jetmoe_t_e32_64", 89.3)]
    [InlineData("v_jetmoe_t_e64_128", 174.7)]
    [InlineData("soft_moe_t", 353.9)]
    [InlineData("soft_moe_s", 1412.0)]
    [InlineData("v_jetmoe_s", 1058.1)]
    [InlineData("vit_tiny_patch16_224", 5.7)]
    public void MatchesSpecTable(string variant, double millions)
    {
        using var model = ModelRegistry.Create(variant, torch.META);
        double got = ModelRegistry.ParameterCount(model) / 1e6;
        Assert.Equal(millions, Math.Round(got, 1));
    }

    [Fact]
    public void OneSpheroMoELayerHasTheSpecCount()
    {
        // Spec §3.1: 43,578,242 parameters per MoE layer at D=192, 98/196.
        using var dense = ModelRegistry.Create("vit_tiny_patch16_224", torch.META);
        using var moe = ModelRegistry.Create("v_jetmoe_t_l11_12", torch.META);
        // Two MoE layers replace two dense MLPs; avg pooling swaps the final norm for an fc_norm of the same size.
        long denseMlp = 2 * (192 * 768) + 768 + 192;
        long perLayer = (ModelRegistry.ParameterCount(moe) - ModelRegistry.ParameterCount(dense) + 2 * denseMlp) / 2;
        Assert.Equal(43_578_242, perLayer);
    }
}

public class FlopCounterTests
{
    [Theory]
    // Spec §3.4: V-JetMoE-T ≈ 1.19 GMACs; 32/64 ≈ 0.88; 64/128 ≈ 1.03; dense ViT-T ≈ 1.08.
    [InlineData("v_jetmoe_t", 1.19)]
    [InlineData("v_jetmoe_t_e32_64", 0.88)]
    [InlineData("v_jetmoe_t_e64_128", 1.03)]
    [InlineData("vit_tiny_patch16_224", 1.08)]
    public void MatchesSpecCostTable(string variant, double gmacs) =>
        Assert.InRange(FlopCounter.ForwardMacs(ModelRegistry.Get(variant)) / 1e9, gmacs - 0.006, gmacs + 0.006);

    [Fact]
    public void OneSpheroMoELayerCostsWhatSpecSays()
    {
        var m = ModelRegistry.Get("v_jetmoe_t").Vit!.Moe!;
        Assert.Equal(76.7, Math.Round(FlopCounter.MoeMacs(197, 192, m) / 1e6, 1)); // spec §3.4 total
    }
}
