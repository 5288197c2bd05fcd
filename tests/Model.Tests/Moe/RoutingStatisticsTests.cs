using Jetpack.Model.Moe;
using static TorchSharp.torch;

namespace Jetpack.Model.Tests.Moe;

/// <summary>The per-layer routing statistics the workers export (DESIGN.md "Telemetry").</summary>
public sealed class RoutingStatisticsTests
{
    [Fact]
    public void DispatchMassAndCombineEntropyFollowTheirDefinitions()
    {
        // b 1, n 2 tokens, j 3 slots; dispatch columns sum to 1 over tokens
        using var dispatch = tensor(new float[] { 0.9f, 0.5f, 1.0f, 0.1f, 0.5f, 0.0f }, [1, 2, 3]);
        // token 0 reads one slot (entropy 0), token 1 reads three uniformly (entropy ln 3)
        using var combine = tensor(new float[] { 1, 0, 0, 1 / 3f, 1 / 3f, 1 / 3f }, [1, 2, 3]);
        var s = RoutingStatistics.Of(4, dispatch, combine);
        Assert.Equal(4, s.Layer);
        Assert.Equal(2.4, s.DispatchMassMax, 5);                              // token 0: 0.9 + 0.5 + 1.0
        Assert.Equal(1.5, s.DispatchMassMean, 5);                             // j / n
        Assert.Equal(Math.Log(3) / 2, s.CombineEntropy, 5);
    }

    [Fact]
    public void TheLayerKeepsStatisticsOnlyWhenAsked()
    {
        var config = new Jetpack.Model.Models.MoeConfig { CoreExperts = 2, UniversalExperts = 2, Layers = [0] };
        using var layer = new SpheroMoE(8, config, dropPath: 0);
        layer.eval();
        using var x = randn(2, 5, 8);
        using (var _ = layer.forward(x)) Assert.Null(layer.LastStatistics);
        layer.CollectStatistics = true;
        using (var _ = layer.forward(x)) { }
        var s = layer.LastStatistics!;
        Assert.Equal(4.0 / 5, s.DispatchMassMean, 5);                         // 4 slots over 5 tokens
        Assert.True(s.DispatchMassMax >= s.DispatchMassMean);
        Assert.InRange(s.CombineEntropy, 0, Math.Log(4) + 1e-6);
    }

    /// <summary>Two ranks' statistics of their halves of a batch merge into the whole batch's (what a distributed run's rank 0 reports).</summary>
    [Fact]
    public void TwoRanksHalvesMergeIntoTheWholeBatch()
    {
        // b 4 (rank 0: images 0–1, rank 1: images 2–3), n 5 tokens, 6 experts × 2 slots, skewed towards expert 1 in the second half
        using var logits = randn([4, 5, 12], generator: new Generator(3));
        logits[TensorIndex.Slice(2, 4), .., TensorIndex.Slice(2, 4)] += 2;
        using var dispatch = logits.softmax(1);
        using var combine = logits.softmax(-1);
        var whole = RoutingStatistics.Of(7, dispatch, combine, slotsPerExpert: 2);
        var halves = Enumerable.Range(0, 2).Select(r => RoutingStatistics.Of(7, dispatch.narrow(0, 2 * r, 2), combine.narrow(0, 2 * r, 2), slotsPerExpert: 2)).ToList();
        float[]? sent = null;
        RoutingStatistics.Merge([halves[1]], rank: 1, world: 2, v => sent = (float[])v.Clone());              // what rank 1 contributes
        var merged = RoutingStatistics.Merge([halves[0]], rank: 0, world: 2, v => { for (int i = 0; i < v.Length; i++) v[i] += sent![i]; }).Single();
        Assert.Equal((7, 20L), (merged.Layer, merged.Tokens));
        Assert.NotEqual(halves[0].MaxLoadShare, whole.MaxLoadShare, 3);                                   // a half alone is not the batch
        for (int e = 0; e < 6; e++) Assert.Equal(whole.ExpertLoad[e], merged.ExpertLoad[e], 6);
        Assert.Equal(whole.CombineEntropy, merged.CombineEntropy, 5);
        Assert.Equal(whole.DispatchMassMean, merged.DispatchMassMean, 5);
        Assert.Equal(whole.DispatchMassMax, merged.DispatchMassMax, 5);
        Assert.Equal(whole.TopExperts(3).Select(t => t.Expert), merged.TopExperts(3).Select(t => t.Expert));
    }
}
