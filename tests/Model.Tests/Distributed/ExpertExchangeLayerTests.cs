using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Data;
using Jetpack.Model.Distributed;
using Jetpack.Model.Models;
using Jetpack.Model.Moe;

namespace Jetpack.Model.Tests.Distributed;

/// <summary>
/// The seam alone: one SpheroMoE layer split over N in-process ranks gives the unsharded layer's
/// outputs, input gradients and parameter gradients (soft-moe-pytorch's distributed check).
/// </summary>
public class ExpertExchangeLayerTests
{
    static readonly MoeConfig Config = new()
    {
        Kind = MoeKind.Sphero, CoreExperts = 5, UniversalExperts = 7, SlotsPerExpert = 2,
        ExpertDropout = 0, MoeDropPathRate = 0, NoiseStd = 0,
    };
    const int Dim = 16, Batch = 7, Tokens = 5;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ShardedLayerEqualsTheUnshardedLayer(int world)
    {
        torch.manual_seed(21);
        using var full = new SpheroMoE(Dim, Config, dropPath: 0);
        full.train();
        var initial = Ranks.Clone(full.state_dict());
        var x = torch.randn([Batch, Tokens, Dim], generator: new Generator(22)).requires_grad_(true);
        var w = torch.randn([Batch, Tokens, Dim], generator: new Generator(23));
        var y = full.forward(x);
        (y * w).sum().backward();
        var fullGrads = full.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());

        var hub = new InProcessHub(world, TimeSpan.FromSeconds(30));
        var batches = Enumerable.Range(0, world).Select(r => DistributedSampler.RankSlice(Batch, world, r).Length).ToArray();
        var results = Ranks.Run(world, rank =>
        {
            var shard = new ExpertShard(world, rank, hub[rank]);
            using var layer = new SpheroMoE(Dim, Config, dropPath: 0, shard: shard, layerIndex: 3);
            layer.train();
            layer.load_state_dict(ExpertKeysOfLayer.Slice(initial, world, rank, Config));
            var (offset, length) = DistributedSampler.RankSlice(Batch, world, rank);
            var xr = x.detach().narrow(0, offset, length).clone().requires_grad_(true);
            shard.BeginMicroBatch(step: 0, micro: 0, batches);
            var yr = layer.forward(xr);
            Assert.Equal(1, shard.PendingCount);                                         // the local expert graph, kept for backward
            (yr * w.narrow(0, offset, length)).sum().backward();
            shard.ThrowIfBackwardFailed();
            Assert.Equal(0, shard.PendingCount);                                         // released by the backward
            shard.BeginMicroBatch(step: 0, micro: 1, batches);
            using (no_grad()) layer.forward(xr).Dispose();
            Assert.Equal(0, shard.PendingCount);                                         // nothing kept without grad
            return (Y: yr.detach().clone(), XGrad: xr.grad!.clone(),
                    Grads: layer.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()));
        });

        Assert.True(Ranks.RelativeDeviation(torch.cat(results.Select(r => r.Y).ToArray(), 0), y.detach()) < 1e-5, "outputs differ");
        Assert.True(Ranks.RelativeDeviation(torch.cat(results.Select(r => r.XGrad).ToArray(), 0), x.grad!) < 1e-5, "input gradients differ");
        foreach (var (name, g) in fullGrads)
        {
            var got = name.Contains("_experts.")
                ? torch.cat(results.Select(r => r.Grads[name]).ToArray(), 0)                 // each expert's gradient on its owner
                : results.Select(r => r.Grads[name]).Aggregate((a, b) => a + b);            // replicated: summed over ranks
            Assert.True(Ranks.RelativeDeviation(got, g) < 1e-5, $"gradient of {name} differs: {Ranks.RelativeDeviation(got, g):g3}");
        }
    }

    [Fact]
    public void AShardWithoutAnExchangeCannotRunAForwardOfPartialExperts()
    {
        var shard = new ExpertShard(2, 1);
        using var layer = new SpheroMoE(Dim, Config, dropPath: 0, shard: shard);
        // rank 1's rows are its placement's (by cost since issue 19: core experts split evenly, universal ones levelling the cost)
        var range = ExpertRange.For(Config, 2, 1);
        Assert.Equal([range.UnivCount, Dim, Dim], layer.named_parameters().First(p => p.name == "univ_experts.vit_fc1.weight").parameter.shape);
        Assert.Equal([range.CoreCount, 4 * Dim, Dim], layer.named_parameters().First(p => p.name == "core_experts.vit_fc1.weight").parameter.shape);
        Assert.True(range.UnivCount < Config.UniversalExperts && range.CoreCount < Config.CoreExperts, "rank 1 holds only part of the experts");
        shard.BeginMicroBatch(0, 0, [1, 1]);
        var e = Assert.Throws<InvalidOperationException>(() => layer.forward(torch.randn(1, Tokens, Dim)));
        Assert.Contains("no expert exchange", e.Message);
    }
}

/// <summary>Slices one layer's state dict (keys without a block prefix) the way <see cref="ExpertKeys.Slice"/> slices a model's.</summary>
static class ExpertKeysOfLayer
{
    public static Dictionary<string, Tensor> Slice(Dictionary<string, Tensor> full, int world, int rank, MoeConfig config)
    {
        var range = ExpertRange.For(config, world, rank);
        return full.ToDictionary(kv => kv.Key, kv =>
            kv.Key.StartsWith("core_experts.") ? kv.Value.narrow(0, range.CoreStart, range.CoreCount)
            : kv.Key.StartsWith("univ_experts.") ? kv.Value.narrow(0, range.UnivStart, range.UnivCount)
            : kv.Value);
    }
}
