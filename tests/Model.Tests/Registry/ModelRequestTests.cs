using System.Text.Json;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Tests.Registry;

/// <summary>Any expert configuration from a request (issue 19): fields applied, every field checked by name, sizes bounded first.</summary>
public class ModelRequestTests
{
    static ModelRequest Parse(string json) => ModelRequest.FromJson(json);

    [Fact]
    public void AMappingOverridesTheBaseFieldsAndNamesTheVariantAfterThem()
    {
        var spec = ModelRegistry.Resolve(Parse("""{"base": "v_jetmoe_t", "core_experts": 392, "universal_experts": 784, "slots_per_expert": 2, "moe_layers": ["6..11"], "core_hidden_ratio": 4, "universal_hidden_ratio": 1, "kind": "sphero"}"""));
        var moe = spec.Vit!.Moe!;
        Assert.Equal((392, 784, 2, 4.0, 1.0, MoeKind.Sphero), (moe.CoreExperts, moe.UniversalExperts, moe.SlotsPerExpert, moe.CoreHiddenRatio, moe.UniversalHiddenRatio, moe.Kind));
        Assert.Equal([6, 7, 8, 9, 10, 11], moe.Layers);
        Assert.Equal(0.1, spec.Vit.DropPathRate);                                  // the base's other fields stay
        Assert.Equal("v_jetmoe_t{core_experts=392,universal_experts=784,slots_per_expert=2,moe_layers=6..11,core_hidden_ratio=4,universal_hidden_ratio=1,kind=sphero}", spec.Variant);
        // 4× the experts of V-JetMoE-T (265.4M, of which ~11.6M dense): the expert part scales by 4, the count is exact from the config.
        long expected = ModelRegistry.ParameterCount(ModelRegistry.Get("v_jetmoe_t")) + 3 * ModelRegistry.ExpertParameters(ModelRegistry.Get("v_jetmoe_t"))
                        + 6L * 1176 * 192;                                          // the second slot's φ rows
        Assert.Equal(expected, ModelRegistry.ParameterCount(spec));
    }

    [Fact]
    public void AConvNeXtTakesItsExpertsPerStage()
    {
        var request = Parse("""{"base": "c_jetmoe_f", "stages": {"2": {"core_experts": 8, "universal_experts": 16, "slots_per_expert": 2, "moe_layers": ["0..2"]}, "3": null}, "num_classes": 10}""");
        var spec = ModelRegistry.Resolve(request);
        var c = spec.ConvNeXt!;
        var cj = ModelRegistry.Get("c_jetmoe_f").ConvNeXt!;
        Assert.Equal((8, 16, 2), (c.StageMoe[2]!.CoreExperts, c.StageMoe[2]!.UniversalExperts, c.StageMoe[2]!.SlotsPerExpert));
        Assert.Equal([0, 1, 2], c.StageMoe[2]!.Layers);
        Assert.Equal(cj.StageMoe[2]!.CoreHiddenRatio, c.StageMoe[2]!.CoreHiddenRatio);   // fields not given stay the base's
        Assert.Null(c.StageMoe[3]);                                                          // null: the stage becomes dense
        Assert.Equal(10, c.NumClasses);
        Assert.Equal("c_jetmoe_f{stages.2.core_experts=8,stages.2.universal_experts=16,stages.2.slots_per_expert=2,stages.2.moe_layers=0..2,stages.3=dense,num_classes=10}", spec.Variant);
        Assert.Equal(3, spec.MoeLayers().Count());
        Assert.Equal(request, Parse(request.ToString()));                                    // round-trips as --model text
        // a dense ConvNeXt becomes an MoE the same way
        var made = ModelRegistry.Resolve(Parse("""{"base": "convnext_femto", "stages": {"3": {"core_experts": 4, "universal_experts": 4, "moe_layers": [0, 1]}}}"""));
        Assert.Equal(2, made.MoeLayers().Count());
        Assert.True(ModelRegistry.ParameterCount(made) > ModelRegistry.ParameterCount(ModelRegistry.Get("convnext_femto")));
    }

    [Fact]
    public void ANameIsTheRegisteredVariantAndRoundTripsAsAString()
    {
        ModelRequest name = "v_jetmoe_fmnist";
        Assert.Equal(ModelRegistry.Get("v_jetmoe_fmnist"), ModelRegistry.Resolve(name));
        Assert.Equal("\"v_jetmoe_fmnist\"", JsonSerializer.Serialize(name, ModelRequest.Json));
        var mapping = Parse("""{"base": "v_jetmoe_fmnist", "num_classes": "auto", "moe_layers": [3, "4..5"]}""");
        var back = Parse(mapping.ToString());
        Assert.Equal(mapping, back);
        Assert.Equal([3, 4, 5], back.MoeLayers!);
    }

    [Theory]
    [InlineData("""{"base": "nope"}""", "base", "unknown model variant 'nope'")]
    [InlineData("""{"base": "v_jetmoe_t", "core_experts": -1}""", "core_experts", "must be in 0..65,536")]
    [InlineData("""{"base": "v_jetmoe_t", "core_experts": 100000000}""", "core_experts", "must be in 0..65,536")]
    [InlineData("""{"base": "v_jetmoe_t", "universal_experts": 70000}""", "universal_experts", "must be in 0..")]
    [InlineData("""{"base": "v_jetmoe_t", "slots_per_expert": 0}""", "slots_per_expert", "must be in 1..64")]
    [InlineData("""{"base": "v_jetmoe_t", "core_experts": 65536, "universal_experts": 65536, "slots_per_expert": 2}""", "slots_per_expert", "slots per layer, above the limit")]
    [InlineData("""{"base": "v_jetmoe_t", "moe_layers": [12]}""", "moe_layers", "block 12 is outside blocks 0..11")]
    [InlineData("""{"base": "v_jetmoe_t", "moe_layers": [6, 6]}""", "moe_layers", "repeats a block")]
    [InlineData("""{"base": "v_jetmoe_t", "moe_layers": []}""", "moe_layers", "at least one block")]
    [InlineData("""{"base": "v_jetmoe_t", "core_hidden_ratio": 0}""", "core_hidden_ratio", "must be in (0, 64]")]
    [InlineData("""{"base": "v_jetmoe_t", "universal_hidden_ratio": 1000}""", "universal_hidden_ratio", "must be in (0, 64]")]
    [InlineData("""{"base": "v_jetmoe_t", "core_experts": 0, "universal_experts": 0}""", "core_experts", "leaves no expert")]
    [InlineData("""{"base": "v_jetmoe_t", "kind": "soft", "universal_experts": 5}""", "universal_experts", "Soft MoE has one expert size")]
    [InlineData("""{"base": "v_jetmoe_t", "num_classes": 0}""", "num_classes", "must be 'auto' or an integer in 1..1,000,000")]
    [InlineData("""{"base": "v_jetmoe_t", "num_classes": "many"}""", "num_classes", "must be 'auto' or an integer")]
    [InlineData("""{"base": "v_jetmoe_t", "num_classes": "auto"}""", "num_classes", "there is no dataset here")]
    [InlineData("""{"base": "v_jetmoe_t", "image_size": 100}""", "image_size", "multiple of the patch size 16")]
    [InlineData("""{"base": "v_jetmoe_t", "image_size": 100000}""", "image_size", "must be in 1..4096")]
    [InlineData("""{"base": "vit_tiny_patch16_224", "core_experts": 8}""", "moe_layers", "is dense: give the blocks")]
    [InlineData("""{"base": "c_jetmoe_f", "slots_per_expert": 2}""", "slots_per_expert", "its experts are set per stage")]
    [InlineData("""{"base": "c_jetmoe_f", "stages": {"4": {"core_experts": 2}}}""", "stages", "stages 0..3, got 4")]
    [InlineData("""{"base": "c_jetmoe_f", "stages": {"2": {"core_experts": -1}}}""", "stages.2.core_experts", "must be in 0..65,536")]
    [InlineData("""{"base": "c_jetmoe_f", "stages": {"2": {"moe_layers": [9]}}}""", "stages.2.moe_layers", "block 9 is outside blocks 0..8 of stage 2 of 'c_jetmoe_f'")]
    [InlineData("""{"base": "c_jetmoe_f", "stages": {"3": {"core_experts": 0, "universal_experts": 0}}}""", "stages.3.core_experts", "leaves no expert")]
    [InlineData("""{"base": "convnext_femto", "stages": {"1": {"core_experts": 4}}}""", "stages.1.moe_layers", "stage 1 of 'convnext_femto' is dense: give the blocks")]
    [InlineData("""{"base": "v_jetmoe_t", "stages": {"2": {"core_experts": 4}}}""", "stages", "is a ViT")]
    [InlineData("""{"base": "v_jetmoe_t", "core_experts": 65536, "universal_experts": 65536, "core_hidden_ratio": 64, "universal_hidden_ratio": 64}""", "", "expert parameters")]
    public void EveryFieldIsCheckedByName(string json, string field, string problem)
    {
        var e = Assert.Throws<ModelRequestException>(() => ModelRegistry.Resolve(Parse(json)));
        Assert.Equal(field, e.Field);
        Assert.Contains(problem, e.Problem);
    }

    [Theory]
    [InlineData("""{"base": "v_jetmoe_t", "moe_layers": ["0..2147483647"]}""", "moe_layers", "spans more than 1024 layers")]
    [InlineData("""{"base": "v_jetmoe_t", "moe_layers": ["9..3"]}""", "moe_layers", "runs backwards")]
    [InlineData("""{"base": "v_jetmoe_t", "moe_layers": [true]}""", "moe_layers", "must list block indices")]
    [InlineData("""{"base": "v_jetmoe_t", "experts": 3}""", "experts", "unknown field")]
    [InlineData("""{"base": "v_jetmoe_t", "slots_per_expert": "two"}""", "slots_per_expert", "has the wrong type")]
    [InlineData("""{"core_experts": 3}""", "base", "is required")]
    [InlineData("""[1]""", "", "must be a variant name or a mapping")]
    public void MalformedMappingsFailWhileReadingNamingTheFieldWithoutExpandingRanges(string json, string field, string problem)
    {
        var e = Assert.Throws<ModelRequestException>(() => Parse(json));
        Assert.Equal(field, e.Field);
        Assert.Contains(problem, e.Problem);
    }

    [Fact]
    public void AutoClassesTakeTheDatasetCountAndADenseBaseBecomesAnMoe()
    {
        var spec = ModelRegistry.Resolve(Parse("""{"base": "vit_fmnist_t", "num_classes": "auto", "core_experts": 8, "universal_experts": 0, "moe_layers": [5], "kind": "soft"}"""), datasetClasses: 5);
        Assert.Equal(5, spec.Vit!.NumClasses);
        Assert.Equal((MoeKind.Soft, 8, 0), (spec.Vit.Moe!.Kind, spec.Vit.Moe.CoreExperts, spec.Vit.Moe.UniversalExperts));
        // switching a dual-path base to soft drops the universal experts unless they are given
        var soft = ModelRegistry.Resolve(Parse("""{"base": "v_jetmoe_fmnist", "kind": "soft"}"""));
        Assert.Equal(0, soft.Vit!.Moe!.UniversalExperts);
    }
}
