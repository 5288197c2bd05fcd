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
}
