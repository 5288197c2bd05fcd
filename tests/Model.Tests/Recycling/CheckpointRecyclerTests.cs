using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Recycling;
using Jetpack.Model.Recycling.Graph;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Tests.Recycling;

/// <summary>Checkpoint recycling against spec §5: every expert is the predecessor submatrix at its
/// recorded indices, the rest is the target's, fresh parameters follow the spec's inits.</summary>
public class CheckpointRecyclerTests(RecyclingFixture f) : IClassFixture<RecyclingFixture>
{
    static Dictionary<string, Tensor> State(RecycleResult r) => r.Model.state_dict();

    static void AssertBitEqual(Tensor expected, Tensor actual, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        Assert.True(expected.eq(actual).all().item<bool>(), $"{what} differs");
    }

    [Fact]
    public void EveryExpertIsThePredecessorSubmatrixAtItsRecordedIndices()
    {
        using var r = f.Recycle(new RecycleOptions());
        var state = State(r);
        var pred = f.Predecessor.Tensors;
        foreach (var layer in r.Layers)
        {
            var moe = f.Successor.Vit!.Moe!;
            string p = layer.Layer;
            var w1 = pred[$"{p}.fc1.weight"]; var b1 = pred[$"{p}.fc1.bias"]; var w2 = pred[$"{p}.fc2.weight"]; var b2 = pred[$"{p}.fc2.bias"];
            for (int e = 0; e < moe.TotalExperts; e++)
            {
                using var scope = NewDisposeScope();
                bool core = e < moe.CoreExperts;
                var h = layer.Hidden[e];
                if (!core) h = h.index_select(0, layer.UniversalKeep!);
                var c = layer.Channels[e];
                string name = core ? $"{p}.core_experts" : $"{p}.univ_experts";
                int k = core ? e : e - moe.CoreExperts;
                AssertBitEqual(w1.index_select(0, h).index_select(1, c), state[$"{name}.vit_fc1.weight"][k], $"{name}[{k}].fc1.weight");
                AssertBitEqual(b1.index_select(0, h), state[$"{name}.vit_fc1.bias"][k], $"{name}[{k}].fc1.bias");
                AssertBitEqual(w2.index_select(0, c).index_select(1, h), state[$"{name}.vit_fc2.weight"][k], $"{name}[{k}].fc2.weight");
                AssertBitEqual(b2.index_select(0, c), state[$"{name}.vit_fc2.bias"][k], $"{name}[{k}].fc2.bias");
            }
        }
    }

    [Fact]
    public void SelectionsAreSortedDistinctAndUniversalExpertsKeepEveryFourthUnit()
    {
        using var r = f.Recycle(new RecycleOptions());
        foreach (var layer in r.Layers)
        {
            Assert.Equal([72, 256], layer.Hidden.shape);       // 24 + 48 experts, core hidden 4·64 of 512
            Assert.Equal([72, 64], layer.Channels.shape);      // 64 of 128 channels
            foreach (var sel in new[] { layer.Hidden, layer.Channels })
            {
                var diffs = sel.narrow(1, 1, sel.shape[1] - 1) - sel.narrow(1, 0, sel.shape[1] - 1);
                Assert.True(diffs.gt(0).all().item<bool>(), "rows must be strictly increasing");
            }
            // spec §5.5: u = round(linspace(0, Hc−1, Hu)) = {0, 4, 8, …} for Hc = 4·Hu
            var u = layer.UniversalKeep!.data<long>().ToArray();
            Assert.Equal(64, u.Length);
            Assert.Equal([0L, 4, 8, 12], u[..4]);
            Assert.Equal(255, u[^1]);
            // experts differ in both hidden and channel subsets (per-expert sampling)
            Assert.False(layer.Hidden[0].eq(layer.Hidden[1]).all().item<bool>());
            Assert.False(layer.Channels[0].eq(layer.Channels[1]).all().item<bool>());
            Assert.All(layer.HiddenMass!, m => Assert.InRange(m, 0.0, 1.0));
        }
    }

    [Fact]
    public void NonExpertTensorsAreBitEqualToTheTargetAndRouterParametersAreFresh()
    {
        using var r = f.Recycle(new RecycleOptions());
        var state = State(r);
        foreach (var (key, from) in r.Provenance)
        {
            if (from == Provenance.Target) AssertBitEqual(f.Target.Tensors[key], state[key], key);
        }
        Assert.Equal(Provenance.Target, r.Provenance["blocks.0.attn.qkv.weight"]);
        Assert.Equal(Provenance.Target, r.Provenance["blocks.3.norm2.weight"]);     // the MoE block keeps the target's norm2
        Assert.Equal(Provenance.Target, r.Provenance["blocks.2.mlp.fc1.weight"]);   // dense MLPs of dense blocks
        Assert.Equal(Provenance.Target, r.Provenance["pos_embed"]);
        foreach (var key in new[] { "blocks.3.mlp.phi", "blocks.3.mlp.slot_norm.weight", "blocks.3.mlp.scales.0", "head.weight", "head.bias" })
            Assert.Equal(Provenance.Fresh, r.Provenance[key]);
        Assert.Equal(Provenance.Target, r.Provenance["fc_norm.weight"]);            // this target pools by average too
        Assert.Contains("blocks.3.mlp.fc1.weight", r.UnusedTargetKeys);            // MoE blocks drop the dense MLP
        Assert.Contains("head.weight", r.UnusedTargetKeys);

        using var scope = NewDisposeScope();
        var phi = state["blocks.3.mlp.phi"].reshape(72, 64);
        Assert.True((phi.t().matmul(phi) - torch.eye(64)).abs().max().item<float>() < 1e-5, "Φ must be orthogonal (spec §3.1)");
        Assert.Equal(0.5f, state["blocks.4.mlp.scales.1"].item<float>());
        Assert.True(state["blocks.4.mlp.slot_norm.weight"].eq(1).all().item<bool>());
        Assert.True(state["head.bias"].eq(0).all().item<bool>());
        Assert.InRange(state["head.weight"].std().item<float>(), 0.012, 0.025);    // trunc-normal std .02 in ±2σ
    }

    [Fact]
    public void TheSameSeedGivesTheSameCheckpointAndAnotherSeedAnother()
    {
        using var a = f.Recycle(new RecycleOptions { Seed = 1 });
        using var b = f.Recycle(new RecycleOptions { Seed = 1 });
        using var c = f.Recycle(new RecycleOptions { Seed = 2 });
        var sa = State(a); var sb = State(b); var sc = State(c);
        foreach (var key in sa.Keys.Where(k => a.Provenance[k] != Provenance.Fresh))
            AssertBitEqual(sa[key], sb[key], key);
        Assert.False(sa["blocks.3.mlp.core_experts.vit_fc1.weight"].eq(sc["blocks.3.mlp.core_experts.vit_fc1.weight"]).all().item<bool>());
    }

    [Fact]
    public void UniformSelectionGivesIdenticalExperts()
    {
        using var r = f.Recycle(new RecycleOptions { Method = RecycleMethod.Uniform });
        var w = State(r)["blocks.4.mlp.core_experts.vit_fc1.weight"];
        for (int e = 1; e < 24; e++) AssertBitEqual(w[0], w[e], $"core expert {e}");
        var u = State(r)["blocks.4.mlp.univ_experts.vit_fc2.weight"];
        for (int e = 1; e < 48; e++) AssertBitEqual(u[0], u[e], $"universal expert {e}");
    }

    [Fact]
    public void SparseUpcyclingGivesExactCopiesOfTheTargetMlp()
    {
        using var r = f.Recycle(new RecycleOptions { Method = RecycleMethod.SparseUpcycling }, ModelRegistry.Get("v_jetmoe_fmnist_upcycle"));
        var state = State(r);
        foreach (var l in new[] { 3, 4, 5 })
            for (int e = 0; e < 49; e += 7)
            {
                AssertBitEqual(f.Target.Tensors[$"blocks.{l}.mlp.fc1.weight"], state[$"blocks.{l}.mlp.core_experts.vit_fc1.weight"][e], $"layer {l} expert {e} fc1");
                AssertBitEqual(f.Target.Tensors[$"blocks.{l}.mlp.fc2.bias"], state[$"blocks.{l}.mlp.core_experts.vit_fc2.bias"][e], $"layer {l} expert {e} fc2 bias");
            }
    }

    [Fact]
    public void RandomSelectionDiffersPerExpertAndIgnoresStatistics()
    {
        using var r = CheckpointRecycler.Recycle(f.Successor, f.PredecessorSpec, f.Predecessor.Tensors, f.Target.Tensors, null,
                                                 new RecycleOptions { Method = RecycleMethod.Random });
        var h = r.Layers[0].Hidden;
        Assert.False(h[0].eq(h[1]).all().item<bool>());
        Assert.Null(r.Layers[0].HiddenMass);
    }

    [Fact]
    public void PaperLiteralVariantSelectsEverythingFromThePredecessor()
    {
        using var r = f.Recycle(new RecycleOptions { DenseFrom = DenseSource.Predecessor });
        var state = State(r);
        var pred = f.Predecessor.Tensors;
        Assert.Equal(Provenance.Predecessor, r.Provenance["patch_embed.proj.weight"]);
        Assert.Equal(Provenance.Predecessor, r.Provenance["blocks.0.attn.qkv.weight"]);
        // the same global channel set c everywhere: patch-embed rows and norm1 entries come from one c
        var rows = state["patch_embed.proj.weight"].reshape(64, -1);
        var predRows = pred["patch_embed.proj.weight"].reshape(128, -1);
        var c = Enumerable.Range(0, 64).Select(i => Enumerable.Range(0, 128).First(j => predRows[j].eq(rows[i]).all().item<bool>())).ToArray();
        Assert.Equal(c.Order(), c);
        AssertBitEqual(pred["blocks.2.norm1.weight"].index_select(0, torch.tensor(c.Select(x => (long)x).ToArray())), state["blocks.2.norm1.weight"], "norm1[c]");
        Assert.Equal([192, 64], state["blocks.1.attn.qkv.weight"].shape);
    }

    [Fact]
    public void ADenseSuccessorIsWeightSelectionFromThePredecessor()
    {
        var dense = ModelRegistry.Get("vit_fmnist_t");
        using var r = CheckpointRecycler.Recycle(dense, f.PredecessorSpec, f.Predecessor.Tensors, null, f.Stats,
                                                 new RecycleOptions { DenseFrom = DenseSource.Predecessor });
        Assert.Empty(r.Layers);
        var state = State(r);
        var pred = f.Predecessor.Tensors;
        // every block's MLP is a predecessor submatrix: each fc1 row is a predecessor fc1 row restricted to 64 channels
        var w1 = state["blocks.5.mlp.fc1.weight"];                                  // [256, 64]
        var p1 = pred["blocks.5.mlp.fc1.weight"];                                   // [512, 128]
        Assert.Equal([256, 64], w1.shape);
        Assert.Equal(Provenance.Predecessor, r.Provenance["blocks.5.mlp.fc1.weight"]);
        Assert.Equal(Provenance.Fresh, r.Provenance["head.weight"]);
        var b1 = state["blocks.5.mlp.fc1.bias"];
        for (int i = 0; i < 4; i++)
            Assert.Contains(Enumerable.Range(0, 512), j => pred["blocks.5.mlp.fc1.bias"][j].eq(b1[i]).item<bool>());
        Assert.Throws<ArgumentException>(() => CheckpointRecycler.Recycle(dense, f.PredecessorSpec, f.Predecessor.Tensors, f.Target.Tensors, f.Stats,
                                                                          new RecycleOptions()));
    }

    [Fact]
    public void StatisticsRoundTripThroughAFile()
    {
        f.Stats.Save(f.Dir.File("stats.safetensors"));
        using var loaded = ActivationStats.Load(f.Dir.File("stats.safetensors"));
        Assert.Equal(f.Stats.Images, loaded.Images);
        Assert.Equal(f.Stats.Sites.Count, loaded.Sites.Count);
        using var scope = NewDisposeScope();
        Assert.True(f.Stats["blocks.4.mlp.act"].Importance(ImportanceStat.L2).eq(loaded["blocks.4.mlp.act"].Importance(ImportanceStat.L2)).all().item<bool>());
        Assert.True(loaded["blocks.4.mlp.act"].HasCoActivation);
        Assert.False(loaded["blocks.0.mlp.act"].HasCoActivation);
        Assert.Equal(64, loaded.Images);
    }

    [Fact]
    public void GraphPartitioningDrawsWholePartsOfTheCoActivationGraph()
    {
        int[]? parts = null;
        var options = new RecycleOptions
        {
            Method = RecycleMethod.Graph, GraphParts = 8,
            Partitioner = (coact, k, seed) => parts = MetisPartitioner.PartGraphKway(CoActivationGraph.FromMatrix(coact), k, (int)seed),
        };
        using var r = f.Recycle(options);
        Assert.NotNull(parts);
        Assert.Equal(512, parts!.Length);
        // the last layer's experts: every selected unit's part is one of the parts drawn, and all but
        // the last drawn part are taken whole
        var layer = r.Layers[^1];
        for (int e = 0; e < 5; e++)
        {
            var units = layer.Hidden[e].data<long>().ToArray();
            var byPart = units.GroupBy(u => parts[u]).ToDictionary(g => g.Key, g => g.Count());
            int whole = byPart.Count(kv => kv.Value == parts.Count(p => p == kv.Key));
            Assert.True(whole >= byPart.Count - 1, $"expert {e}: {byPart.Count} parts touched, {whole} whole");
        }
    }
}
