using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Recycling;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Tests.Recycling;

public class ActivationStatsTests
{
    [Fact]
    public void EachCallContributesItsL2L1CountAndCoActivationAveragedOverCalls()
    {
        using var scope = NewDisposeScope();
        using var s = new SiteStats("site", 3, coActivation: true);
        var a = torch.tensor(new float[] { 1, -2, 0, 3, 4, -1 }, [1, 2, 3]);   // 2 tokens × 3 units
        var b = torch.tensor(new float[] { 0, 2, 2, 0, 0, 1 }, [2, 3]);
        s.Add(a); s.Add(b);
        // unit 0: calls give √(1+9)=√10 and 0 → mean √10/2
        var l2 = s.Importance(ImportanceStat.L2).data<double>().ToArray();
        Assert.Equal(Math.Sqrt(10) / 2, l2[0], 6);
        Assert.Equal((Math.Sqrt(20) + Math.Sqrt(4)) / 2, l2[1], 6);
        Assert.Equal(new[] { 2.0, 4.0, 2.0 }, s.Importance(ImportanceStat.L1).data<double>().ToArray());
        Assert.Equal(new[] { 1.0, 1.0, 1.0 }, s.Importance(ImportanceStat.ActivationCount).data<double>().ToArray());
        // positives: a → {0}, {0,1}; b → {1,2}, {2}: C = ([[2,1,0],[1,1,0],[0,0,0]] + [[0,0,0],[0,1,1],[0,1,2]]) / 2
        Assert.Equal(new[] { 1.0, 0.5, 0, 0.5, 1, 0.5, 0, 0.5, 1 }, s.CoActivation()!.data<double>().ToArray());
    }

    [Fact]
    public void ProfilingHooksSeeTheSameTensorsAsAManualForward()
    {
        var spec = ModelRegistry.Get("vit_fmnist_pred");
        using var model = ModelRegistry.Create(spec);
        model.eval();
        using var scope = NewDisposeScope();
        var images = torch.randn([3, 1, 28, 28], generator: new Generator(5));
        using var stats = ActivationProfiler.Profile(spec, model, [images]);
        Assert.Equal(3, stats.Images);
        Assert.Equal(6 * 3, stats.Sites.Count);
        // the last block's norm2 output recomputed by hand from the tokens entering that block
        var blocks = ((Jetpack.Model.Models.VisionTransformer)model).Blocks;
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        Tensor? seen = null;
        var norm2 = (nn.Module<Tensor, Tensor>)modules["blocks.5.norm2"];
        var hook = norm2.register_forward_hook((_, _, o) => { seen = o.detach().clone().DetachFromDisposeScope(); return null!; });
        using (no_grad()) model.forward(images);
        hook.remove();
        long[] rows = [0];
        var expected = seen!.reshape(-1, 128).square().sum(rows).sqrt().to(ScalarType.Float64);
        Assert.True((stats["blocks.5.norm2"].Importance(ImportanceStat.L2) - expected).abs().max().item<double>() < 1e-3);
        Assert.True(stats["blocks.5.mlp.act"].Importance(ImportanceStat.L2).sum().item<double>() > 0);
        Assert.True(stats["blocks.5.attn.proj.input"].Importance(ImportanceStat.L2).sum().item<double>() > 0);
    }

    [Fact]
    public void RefusesToProfileAnMoeModel()
    {
        var spec = ModelRegistry.Get("v_jetmoe_fmnist");
        using var model = ModelRegistry.Create(spec);
        Assert.Throws<ArgumentException>(() => ActivationProfiler.Profile(spec, model, []));
    }
}
