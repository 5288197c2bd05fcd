using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Models;
using Jetpack.Model.Recycling;
using Jetpack.Model.Registry;
using Jetpack.Model.Tests.Checkpoints;

namespace Jetpack.Model.Tests.Recycling;

/// <summary>
/// Issue 17: importance sampling (spec §5.3) selects important units. A Fashion-MNIST predecessor is
/// made deliberately skewed — in every MoE block a few "heavy" hidden units are always on and large,
/// the rest are pushed far into GELU's negative tail — then profiled for real (ActivationProfiler on
/// images) and recycled into V-JetMoE-FMNIST by the real recycler over many seeds.
///
/// The margins are derived, not tuned:
/// - Random selection includes each unit with probability keep/total, so the share of mass it covers
///   has mean exactly keep/total whatever the statistics are.
/// - Importance sampling draws `keep` units one after another without replacement, with probability
///   w_i / (weight still in the pool) ≥ w_i / W at each draw. So unit i is missed with probability
///   ≤ (1 − w_i/W)^keep, and the expected covered share is ≥ Σ_i (w_i/W)·(1 − (1 − w_i/W)^keep).
/// - Each expert's covered share lies in [0, 1]; by Hoeffding the mean over n rows deviates from its
///   expectation by more than t = √(ln(2/δ)/(2n)) with probability ≤ δ (δ = 1e-6 here). Rows of one
///   draw are independent given the statistics, which is all the bound needs.
/// </summary>
public sealed class ImportanceSelectionTests(ImportanceSelectionTests.SkewedPredecessor f) : IClassFixture<ImportanceSelectionTests.SkewedPredecessor>
{
    const int Seeds = 6;
    const double Delta = 1e-6;

    /// <summary>vit_fmnist_pred with 16 heavy units per MoE block's MLP; profiled on 64 random images.</summary>
    public sealed class SkewedPredecessor : IDisposable
    {
        public const int Heavy = 16;
        public readonly TempDirectory Dir = new();
        public readonly ModelSpec Successor = ModelRegistry.Get("v_jetmoe_fmnist");
        public readonly ModelSpec Spec = ModelRegistry.Get("vit_fmnist_pred");
        public readonly DenseCheckpoint Predecessor;
        public readonly ActivationStats Stats;
        public readonly int[] MoeBlocks;

        public SkewedPredecessor()
        {
            MoeBlocks = Enumerable.Range(0, Successor.Vit!.Depth).Where(i => Successor.Vit.Moe!.Layers.Contains(i)).ToArray();
            var gen = new Generator(11);
            using (var model = ModelRegistry.Create(Spec))
            {
                var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
                using (no_grad())
                    foreach (var b in MoeBlocks)
                    {
                        var w = p[$"blocks.{b}.mlp.fc1.weight"];                               // [hidden, dim]
                        var bias = p[$"blocks.{b}.mlp.fc1.bias"];                              // [hidden]
                        var heavy = torch.randperm(w.shape[0], generator: gen).narrow(0, 0, Heavy);
                        w.mul_(0.3);                                                           // light units: tiny pre-activations…
                        bias.fill_(-3.0);                                                      // …deep in GELU's negative tail (≈ −0.004, never > 0)
                        using var rows = w.index_select(0, heavy);
                        w.index_copy_(0, heavy, rows * 10.0);                                  // heavy units: 30× the light weights
                        bias.index_fill_(0, heavy, 3.0);                                       // and always on
                    }
                SafetensorsWriter.Write(Dir.File("pred.safetensors"), model.state_dict());
            }
            Predecessor = DenseCheckpoint.Load(Dir.File("pred.safetensors"), Spec);
            using var profiled = ModelRegistry.Create(Spec);
            ModelCheckpoint.LoadWeights(SafetensorsReader.Open(Dir.File("pred.safetensors")), profiled, strict: true);
            var batches = Enumerable.Range(0, 4).Select(_ => torch.randn([16, 1, 28, 28], generator: gen)).ToList();
            Stats = ActivationProfiler.Profile(Spec, profiled, batches, kinds: StatKinds.All);
            foreach (var x in batches) x.Dispose();
        }

        public RecycleResult Recycle(RecycleMethod method, long seed) =>
            CheckpointRecycler.Recycle(Successor, Spec, Predecessor.Tensors, null, Stats,
                                       new RecycleOptions { Method = method, Seed = seed, DenseFrom = DenseSource.Predecessor });

        public void Dispose()
        {
            Predecessor.Dispose(); Stats.Dispose(); Dir.Dispose();
        }
    }

    /// <summary>Per MoE layer and seed, the share of <paramref name="stat"/>'s mass each expert's hidden units cover.</summary>
    List<(string Site, double[] Shares, long Keep, long Total)> Coverage(RecycleMethod method, ImportanceStat stat)
    {
        var rows = new List<(string, double[], long, long)>();
        for (long seed = 0; seed < Seeds; seed++)
        {
            using var r = f.Recycle(method, 100 + seed);
            foreach (var l in r.Layers)
            {
                var site = l.Layer + ".act";                                                   // blocks.N.mlp → blocks.N.mlp.act
                using var importance = f.Stats[site].Importance(stat);
                rows.Add((site, ExpertExtraction.MassCovered(importance, l.Hidden), l.Hidden.shape[1], importance.shape[0]));
            }
        }
        return rows;
    }

    /// <summary>Σ_i (w_i/W)(1 − (1 − w_i/W)^keep): the lower bound on importance sampling's expected coverage.</summary>
    static double CoverageBound(Tensor importance, long keep)
    {
        var w = importance.to(ScalarType.Float64).clamp_min(0).data<double>().ToArray();
        double total = w.Sum();
        return w.Sum(x => x / total * (1 - Math.Pow(1 - x / total, keep)));
    }

    static double Hoeffding(int n) => Math.Sqrt(Math.Log(2 / Delta) / (2.0 * n));

    public static TheoryData<RecycleMethod, ImportanceStat> Statistics => new()
    {
        { RecycleMethod.ImportanceL2, ImportanceStat.L2 },
        { RecycleMethod.ImportanceL1, ImportanceStat.L1 },
        { RecycleMethod.ImportanceCount, ImportanceStat.ActivationCount },
    };

    [Theory]
    [MemberData(nameof(Statistics))]
    public void ImportanceSamplingCoversClearlyMoreMassThanRandomSelection(RecycleMethod method, ImportanceStat stat)
    {
        var importance = Coverage(method, stat);
        var random = Coverage(RecycleMethod.Random, stat);
        long keep = importance[0].Keep, total = importance[0].Total;
        Assert.True(keep >= SkewedPredecessor.Heavy, $"the test wants keep ≥ {SkewedPredecessor.Heavy} heavy units, got keep {keep}");

        double randomMean = random.SelectMany(r => r.Shares).Average();
        int nRandom = random.Sum(r => r.Shares.Length);
        double expected = (double)keep / total;
        Assert.True(Math.Abs(randomMean - expected) <= Hoeffding(nRandom),
            $"random selection covered {randomMean:F4} of the {stat} mass; keep/total = {expected:F4} ± {Hoeffding(nRandom):F4}");

        foreach (var site in importance.Select(r => r.Site).Distinct())
        {
            var shares = importance.Where(r => r.Site == site).SelectMany(r => r.Shares).ToArray();
            using var w = f.Stats[site].Importance(stat);
            double bound = CoverageBound(w, keep), mean = shares.Average();
            Assert.True(bound >= 0.8, $"{site}: the skewed model should put ≥ 0.8 of the {stat} mass in reach, bound {bound:F4}");
            Assert.True(mean >= bound - Hoeffding(shares.Length),
                $"{site}: importance-{stat} covered {mean:F4} on average, below the derived bound {bound:F4} − {Hoeffding(shares.Length):F4}");
            Assert.True(mean - randomMean >= 0.3,
                $"{site}: importance-{stat} covered {mean:F4}, random {randomMean:F4}: not clearly more");
        }
    }
}
