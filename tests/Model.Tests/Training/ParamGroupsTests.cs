using Jetpack.Model.Registry;
using Jetpack.Model.Training;
using TorchSharp;

namespace Jetpack.Model.Tests.Training;

/// <summary>Spec §7.2: the layer-decay multipliers and weight-decay rules of the released IN-1k config.</summary>
public class ParamGroupsTests
{
    /// <summary>The released fine-tuning recipe (spec §7.2): layer decay 0.6, weight decay 0.05.</summary>
    private static readonly TrainerOptions FineTune = new() { LayerDecay = 0.6, WeightDecay = 0.05 };

    private static Dictionary<string, ParamRule> Rules(string variant, TrainerOptions? o = null)
    {
        using var model = ModelRegistry.Create(variant, torch.META);
        return ParamGroups.Describe(ModelRegistry.Get(variant), model.named_parameters().Select(p => (p.name, p.parameter.shape)), o ?? FineTune)
            .ToDictionary(r => r.Name);
    }

    [Theory]
    [InlineData("patch_embed.proj.weight", 13)]
    [InlineData("cls_token", 13)]
    [InlineData("pos_embed", 13)]
    [InlineData("blocks.0.attn.qkv.weight", 12)]
    [InlineData("blocks.5.mlp.fc1.weight", 7)]
    [InlineData("blocks.6.attn.qkv.weight", 6)]
    [InlineData("blocks.6.norm1.weight", 6)]
    [InlineData("blocks.11.attn.proj.bias", 1)]
    [InlineData("fc_norm.weight", 0)]
    [InlineData("head.weight", 0)]
    [InlineData("blocks.6.mlp.phi", 0)]
    [InlineData("blocks.6.norm2.weight", 0)]
    [InlineData("blocks.5.norm2.weight", 7)]          // dense block: ordinary decay
    [InlineData("blocks.9.mlp.scales.0", 0)]
    [InlineData("blocks.9.mlp.slot_norm.bias", 0)]
    [InlineData("blocks.11.mlp.core_experts.vit_fc1.weight", 0)]
    [InlineData("blocks.7.mlp.univ_experts.vit_fc2.bias", 0)]
    public void VJetMoeTLrMultipliersAreLayerDecayPowers(string name, int power)
    {
        var rule = Rules("v_jetmoe_t")[name];
        Assert.Equal(Math.Pow(0.6, power), rule.LrScale, 12);
    }

    [Fact]
    public void SpecListedMultipliersRoundAsPrinted()
    {
        var r = Rules("v_jetmoe_t");
        Assert.Equal(0.0013, r["cls_token"].LrScale, 4);
        Assert.Equal(0.0022, r["blocks.0.norm1.weight"].LrScale, 4);
        Assert.Equal(0.028, r["blocks.5.attn.qkv.weight"].LrScale, 3);
        Assert.Equal(0.047, r["blocks.6.attn.qkv.weight"].LrScale, 3);
        Assert.Equal(0.6, r["blocks.11.norm1.weight"].LrScale, 12);
    }

    [Theory]
    [InlineData("blocks.0.attn.qkv.weight", true)]
    [InlineData("blocks.0.attn.qkv.bias", false)]
    [InlineData("patch_embed.proj.weight", true)]
    [InlineData("patch_embed.proj.bias", false)]
    [InlineData("cls_token", true)]                   // the quirk
    [InlineData("pos_embed", false)]
    [InlineData("blocks.3.norm1.weight", false)]
    [InlineData("blocks.3.norm1.bias", false)]
    [InlineData("blocks.6.norm2.weight", false)]
    [InlineData("fc_norm.weight", false)]
    [InlineData("head.weight", true)]
    [InlineData("head.bias", false)]
    [InlineData("blocks.6.mlp.phi", true)]
    [InlineData("blocks.6.mlp.slot_norm.weight", true)]   // custom key overrides the norm rule
    [InlineData("blocks.6.mlp.slot_norm.bias", true)]
    [InlineData("blocks.6.mlp.scales.0", false)]
    [InlineData("blocks.6.mlp.scales.1", false)]
    [InlineData("blocks.6.mlp.core_experts.vit_fc1.weight", true)]
    [InlineData("blocks.6.mlp.core_experts.vit_fc1.bias", false)]
    [InlineData("blocks.6.mlp.univ_experts.vit_fc2.weight", true)]
    [InlineData("blocks.6.mlp.univ_experts.vit_fc2.bias", false)]
    public void VJetMoeTWeightDecayRules(string name, bool decays)
    {
        Assert.Equal(decays ? 0.05 : 0.0, Rules("v_jetmoe_t")[name].WeightDecay);
    }

    [Fact]
    public void SoftMoeScaleDoesNotDecayAndRunsAtFullLr()
    {
        var r = Rules("soft_moe_fmnist");
        var scales = r.Values.Where(x => x.Name.EndsWith("mlp.scale")).ToList();
        Assert.Equal(3, scales.Count);                // one per MoE block 3..5
        Assert.All(scales, s => Assert.Equal((1.0, 0.0), (s.LrScale, s.WeightDecay)));
        var experts = r.Values.Where(x => x.Name.Contains("experts") && x.Name.EndsWith("weight")).ToList();
        Assert.NotEmpty(experts);
        Assert.All(experts, e => Assert.Equal((1.0, 0.05), (e.LrScale, e.WeightDecay)));
    }

    [Fact]
    public void LayerDecayOneDisablesIt()
    {
        Assert.All(Rules("v_jetmoe_t", new TrainerOptions { LayerDecay = 1.0 }).Values, r => Assert.Equal(1.0, r.LrScale));
    }

    [Fact]
    public void ConvNeXtNumbersBlocksGloballyWithStemFirstAndHeadLast()
    {
        var r = Rules("c_jetmoe_f");                  // depths 3,3,9,3 → top id 19
        Assert.Equal(0, r["stem.0.weight"].LayerId);
        Assert.Equal(1, r["stages.0.blocks.0.conv_dw.weight"].LayerId);
        Assert.Equal(4, r["stages.1.downsample.1.weight"].LayerId);
        Assert.Equal(4, r["stages.1.blocks.0.conv_dw.weight"].LayerId);
        Assert.Equal(9, r["stages.2.blocks.2.conv_dw.weight"].LayerId);
        Assert.Equal(10, r["stages.2.blocks.3.conv_dw.weight"].LayerId);   // MoE block: its conv still decays
        Assert.Equal(19, r["stages.2.blocks.3.norm.weight"].LayerId);      // MoE block's norm → ×1
        Assert.Equal(19, r["stages.3.blocks.0.mlp.phi"].LayerId);
        Assert.Equal(19, r["head.fc.weight"].LayerId);
        Assert.Equal(Math.Pow(0.6, 19), r["stem.0.weight"].LrScale, 12);
        Assert.Equal(0.0, r["stages.0.blocks.0.gamma"].WeightDecay);        // layer scale γ: 1-D
        Assert.Equal(0.05, r["stages.0.blocks.0.conv_dw.weight"].WeightDecay);
    }

    [Theory]
    [InlineData("v_jetmoe_fmnist")]
    [InlineData("c_jetmoe_f")]
    [InlineData("vit_tiny_patch16_224")]
    public void EveryParameterIsInExactlyOneGroup(string variant)
    {
        using var model = ModelRegistry.Create(variant, torch.META);
        var groups = ParamGroups.Build(ModelRegistry.Get(variant), model, FineTune);
        var all = groups.SelectMany(g => g.Parameters).ToList();
        Assert.Equal(model.parameters().Count(), all.Count);
        Assert.Equal(all.Count, all.Distinct(ReferenceEqualityComparer.Instance).Count());
        // Groups are distinct (lr, wd) pairs.
        Assert.Equal(groups.Count, groups.Select(g => (g.LrScale, g.WeightDecay)).Distinct().Count());
    }
}
