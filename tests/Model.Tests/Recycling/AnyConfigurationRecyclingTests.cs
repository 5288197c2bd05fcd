using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Data;
using Jetpack.Model.Models;
using Jetpack.Model.Recycling;
using Jetpack.Model.Recycling.Graph;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;

namespace Jetpack.Model.Tests.Recycling;

/// <summary>
/// Tiny dense predecessor (width 32, MLP 128, depth 8) and target (width 16, MLP 64) on 8×8 images, with
/// activation statistics (co-activation on every block for the graph method): small enough that 1,176
/// experts recycle and train in a second.
/// </summary>
public sealed class MicroRecyclingFixture : IDisposable
{
    static readonly VitConfig Micro = new() { ImageSize = 8, PatchSize = 4, InChannels = 1, NumClasses = 4, Depth = 8, Heads = 2, Pool = PoolKind.Avg };
    public readonly ModelSpec Predecessor = new("micro_pred", Vit: Micro with { Dim = 32 });
    public readonly ModelSpec Target = new("micro_t", Vit: Micro with { Dim = 16 });
    public readonly Dictionary<string, Tensor> Pred, Tgt;
    public readonly ActivationStats Stats;

    public MicroRecyclingFixture()
    {
        torch.manual_seed(5);
        using var pred = ModelRegistry.Create(Predecessor);
        using var tgt = ModelRegistry.Create(Target);
        Pred = pred.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        Tgt = tgt.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        var gen = new Generator(9);
        var batches = Enumerable.Range(0, 2).Select(_ => torch.randn([16, 1, 8, 8], generator: gen)).ToList();
        Stats = ActivationProfiler.Profile(Predecessor, pred, batches, Enumerable.Range(0, 8).Select(l => $"blocks.{l}.mlp.act").ToHashSet());
        foreach (var b in batches) b.Dispose();
    }

    public void Dispose()
    {
        foreach (var t in Pred.Values.Concat(Tgt.Values)) t.Dispose();
        Stats.Dispose();
    }
}

/// <summary>Recycling works for any expert configuration a request can give (issue 19): E from 8 to 1,176, 1–4 slots, MoE in 1–8 layers.</summary>
public class AnyConfigurationRecyclingTests(MicroRecyclingFixture f) : IClassFixture<MicroRecyclingFixture>
{
    static readonly TrainerOptions TwoSteps = new() { Steps = 2, GlobalBatch = 4, WarmupSteps = 1, Mixup = null, Seed = 11 };

    ModelSpec Successor(string fields) =>
        ModelRegistry.Apply(f.Target with { Vit = f.Target.Vit! with { DropPathRate = 0.1 } }, ModelRequest.FromJson($$"""{"base": "micro_t", {{fields}}}"""));

    static RecycleOptions Options(string method) => new()
    {
        Method = RecycleOptions.ParseMethod(method), GraphParts = 8,
        Partitioner = (coact, parts, seed) => MetisPartitioner.PartGraphKway(CoActivationGraph.FromMatrix(coact), parts, (int)seed),
    };

    [Theory]
    [InlineData("\"core_experts\": 4, \"universal_experts\": 4, \"moe_layers\": [7]", "importance-l2", 8)]
    [InlineData("\"core_experts\": 24, \"universal_experts\": 48, \"slots_per_expert\": 2, \"moe_layers\": [\"4..7\"]", "random", 72)]
    [InlineData("\"core_experts\": 49, \"universal_experts\": 98, \"slots_per_expert\": 3, \"moe_layers\": [\"0..7\"]", "uniform", 147)]
    [InlineData("\"core_experts\": 98, \"universal_experts\": 196, \"slots_per_expert\": 4, \"moe_layers\": [2, 5]", "graph", 294)]
    [InlineData("\"core_experts\": 392, \"universal_experts\": 784, \"moe_layers\": [6, 7]", "importance-l1", 1176)]
    [InlineData("\"core_experts\": 16, \"universal_experts\": 0, \"slots_per_expert\": 2, \"moe_layers\": [3]", "sparse-upcycling", 16)]
    [InlineData("\"kind\": \"soft\", \"core_experts\": 20, \"universal_experts\": 0, \"slots_per_expert\": 2, \"moe_layers\": [1, 6]", "importance-count", 20)]
    public void RecyclesAndTrainsTwoSteps(string fields, string method, int experts)
    {
        var spec = Successor(fields);
        var moe = spec.Vit!.Moe!;
        Assert.Equal(experts, moe.TotalExperts);
        using var result = CheckpointRecycler.Recycle(spec, f.Predecessor, f.Pred, f.Tgt, f.Stats, Options(method));
        foreach (var (prefix, _, m) in spec.MoeLayers())
        {
            string core = m.Kind == MoeKind.Soft ? "experts" : "core_experts";
            Assert.Equal(m.CoreExperts, result.Model.state_dict()[$"{prefix}.{core}.vit_fc1.weight"].shape[0]);
            Assert.Equal(Provenance.Recycled, result.Provenance[$"{prefix}.{core}.vit_fc1.weight"]);
        }

        var gen = new Generator(3);
        using var data = new TensorDataset(torch.randn([16, 1, 8, 8], generator: gen), torch.randint(0, 4, [16], generator: gen), 4);
        using var trainer = new Trainer(spec, result.Model, data, TwoSteps);
        var losses = new[] { trainer.TrainStep().Loss, trainer.TrainStep().Loss };
        Assert.Equal(2, trainer.Step);
        Assert.All(losses, l => Assert.True(double.IsFinite(l) && l > 0, $"loss {l}"));
    }

    [Fact]
    public void AnExpertWiderThanThePredecessorsMlpIsRefusedNamingTheField()
    {
        // hidden 16 × 16 = 256 > the predecessor's MLP width 128
        var spec = Successor("\"core_experts\": 4, \"universal_experts\": 4, \"moe_layers\": [7], \"core_hidden_ratio\": 16");
        var e = Assert.Throws<ArgumentException>(() => CheckpointRecycler.Recycle(spec, f.Predecessor, f.Pred, f.Tgt, f.Stats, Options("random")));
        Assert.StartsWith("core_hidden_ratio: core experts of hidden 256", e.Message);
        Assert.Contains("MLP width 128", e.Message);

        var universal = Successor("\"core_experts\": 4, \"universal_experts\": 4, \"moe_layers\": [7], \"core_hidden_ratio\": 2, \"universal_hidden_ratio\": 3");
        e = Assert.Throws<ArgumentException>(() => CheckpointRecycler.Recycle(universal, f.Predecessor, f.Pred, f.Tgt, f.Stats, Options("random")));
        Assert.StartsWith("universal_hidden_ratio:", e.Message);

        var upcycle = Successor("\"core_experts\": 4, \"universal_experts\": 0, \"moe_layers\": [7], \"core_hidden_ratio\": 2");
        e = Assert.Throws<ArgumentException>(() => CheckpointRecycler.Recycle(upcycle, f.Predecessor, f.Pred, f.Tgt, f.Stats, Options("sparse-upcycling")));
        Assert.StartsWith("core_hidden_ratio: sparse upcycling copies the target's MLP (hidden 64)", e.Message);
    }
}
