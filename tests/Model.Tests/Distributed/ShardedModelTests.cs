using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Data;
using Jetpack.Model.Distributed;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Tests.Distributed;

/// <summary>Whole models built for a shard: keys, slice shapes, and forward outputs equal to the full model's.</summary>
public class ShardedModelTests
{
    /// <summary>A ConvNeXt with MoE in two stages of different widths and expert counts (two configs, three MoE layers).</summary>
    static readonly ModelSpec TinyConvNeXt = new("tiny_convnext_expert_parallel", ConvNeXt: new ConvNeXtConfig
    {
        Depths = [1, 1, 2, 1], Dims = [8, 16, 32, 64], ImageSize = 32, InChannels = 1, NumClasses = 10,
        StageMoe =
        [
            null, null,
            new MoeConfig { Kind = MoeKind.Sphero, Layers = [0, 1], CoreExperts = 4, UniversalExperts = 5, ExpertDropout = 0, MoeDropPathRate = 0, NoiseStd = 0 },
            new MoeConfig { Kind = MoeKind.Sphero, Layers = [0], CoreExperts = 2, UniversalExperts = 4, ExpertDropout = 0, MoeDropPathRate = 0, NoiseStd = 0 },
        ],
    });

    public static TheoryData<string, int> Cases => new() { { "vit", 2 }, { "vit", 3 }, { "convnext", 3 } };

    [Theory]
    [MemberData(nameof(Cases))]
    public void AShardedModelHasTheSameKeysAndComputesTheSameOutputs(string family, int world)
    {
        var spec = family == "vit" ? Ranks.Tiny : TinyConvNeXt;
        torch.manual_seed(51);
        using var full = ModelRegistry.Create(spec);
        full.eval();
        var initial = Ranks.Clone(full.state_dict());
        var images = torch.randn([5, .. ModelRegistry.ImageShape(spec)], generator: new Generator(52));
        using var _ = no_grad();
        var expected = full.forward(images);

        var hub = new InProcessHub(world, TimeSpan.FromSeconds(30));
        var batches = Enumerable.Range(0, world).Select(r => DistributedSampler.RankSlice(5, world, r).Length).ToArray();
        var outputs = Ranks.Run(world, rank =>
        {
            var shard = new ExpertShard(world, rank, hub[rank]);
            using var model = ModelRegistry.Create(spec, CPU, shard);
            model.eval();
            var part = ExpertKeys.Slice(spec, initial, world, rank);
            var mine = model.state_dict();
            Assert.Equal(initial.Keys.Order(), mine.Keys.Order());                   // the same names on every rank
            foreach (var (key, t) in part) Assert.Equal(t.shape, mine[key].shape);
            model.load_state_dict(part);
            int layers = model.named_modules().Count(m => m.module is Jetpack.Model.Moe.SpheroMoE);
            Assert.Equal(spec.MoeLayers().Count(), layers);
            Assert.Equal(Enumerable.Range(0, layers), model.named_modules().Select(m => m.module).OfType<Jetpack.Model.Moe.SpheroMoE>().Select(m => m.LayerIndex).Order());
            var (offset, length) = DistributedSampler.RankSlice(5, world, rank);
            shard.BeginMicroBatch(0, 0, batches);
            using var __ = no_grad();
            return model.forward(images.narrow(0, offset, length)).clone();
        });
        double dev = Ranks.RelativeDeviation(torch.cat(outputs, 0), expected);
        Assert.True(dev < 1e-5, $"{family} on {world} ranks: outputs deviate by {dev:g3}");
    }

    /// <summary>Soft MoE is sharded like SpheroMoE (issue 19): a rank holds its slice of the one bank, the keys stay the same.</summary>
    [Fact]
    public void SoftMoEIsExpertParallel()
    {
        var spec = ModelRegistry.Get("soft_moe_fmnist");                      // 49 experts in blocks 4:6
        using var model = ModelRegistry.Create(spec, new Device("meta"), new ExpertShard(2, 1));
        var state = model.state_dict();
        Assert.Equal(24, state["blocks.3.mlp.experts.vit_fc1.weight"].shape[0]);  // ranks hold 25 and 24 of 49
        Assert.Equal(49, state["blocks.3.mlp.phi"].shape[0]);                 // routing stays replicated
        Assert.True(ExpertKeys.IsExpert(spec, "blocks.3.mlp.experts.vit_fc1.weight"));
        Assert.False(ExpertKeys.IsExpert(spec, "blocks.3.mlp.phi"));
    }
}
