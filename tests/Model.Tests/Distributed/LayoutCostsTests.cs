using Jetpack.Model.Distributed;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Tests.Distributed;

/// <summary>The analytic step costs behind `bench scaling` and `plan`, and the fit of the step-time model.</summary>
public class LayoutCostsTests
{
    static ModelSpec WithExperts(int experts)
    {
        var s = ModelRegistry.Get("v_jetmoe_fmnist");
        return s with { Vit = s.Vit! with { Moe = s.Vit.Moe! with { CoreExperts = experts / 3, UniversalExperts = experts - experts / 3 } } };
    }

    [Fact]
    public void ExpertStatePerRankFallsAsOneOverG()
    {
        var spec = WithExperts(1176);
        double one = LayoutCosts.Of(spec, ParallelLayout.Flat(1), 32).ExpertStateBytes;
        // 1,176 experts in 3 layers of width 64: ≈ 58 M expert parameters, × 3 (p, m, v) × 4 bytes
        Assert.InRange(one / 1e6, 690, 710);
        foreach (int g in new[] { 2, 4 })
            Assert.InRange(LayoutCosts.Of(spec, ParallelLayout.Flat(g), 32).ExpertStateBytes / one, 1.0 / g * 0.99, 1.0 / g * 1.01);
        // replicas hold copies: G = 2 of 4 keeps half per rank
        Assert.InRange(LayoutCosts.Of(spec, new ParallelLayout(4, 2), 32).ExpertStateBytes / one, 0.495, 0.505);
    }

    [Fact]
    public void AConvNeXtsStagesAreCostedLikeViTLayers()
    {
        var spec = ModelRegistry.Get("c_jetmoe_f");                  // 98/196 experts in 6 blocks of stage 3 (width 192), 24/48 in 3 of stage 4 (width 384)
        var one = LayoutCosts.Of(spec, ParallelLayout.Flat(1), 32);
        var two = LayoutCosts.Of(spec, ParallelLayout.Flat(2), 32);
        Assert.Equal(0, one.ExchangeBytes);
        Assert.Equal(4L * 9, two.ExchangeMessages);                  // 4 pieces per MoE layer to the other rank
        Assert.InRange(two.ExpertStateBytes / one.ExpertStateBytes, 0.45, 0.55);
        // stage 3 alone at G = 2: each rank sends 16 samples' slots of ~147 foreign experts out and takes 16 foreign samples on its ~147 back, × 2 passes
        Assert.InRange(two.ExchangeBytes, 6 * 2 * 192 * (16.0 * 140 + 16.0 * 140) * 4, 6 * 2 * 192 * (16.0 * 160 + 16.0 * 160) * 4 + 3 * 2 * 384 * (16.0 * 72 * 2) * 4);
    }

    [Fact]
    public void ExchangeBytesFollowTheShapesOfThePieces()
    {
        var spec = WithExperts(72);                                  // 24 core + 48 universal, 1 slot, width 64, 3 MoE layers
        Assert.Equal(0, LayoutCosts.Of(spec, ParallelLayout.Flat(1), 32).ExchangeBytes);
        var two = LayoutCosts.Of(spec, ParallelLayout.Flat(2), 32);
        // each rank: 16 samples × 36 foreign experts out and 16 foreign samples × 36 own experts back, twice (forward, backward), × 64 × 4 bytes, × 3 layers
        Assert.Equal(3 * 2 * (16.0 * 36 + 16.0 * 36) * 64 * 4, two.ExchangeBytes);
        Assert.Equal(3 * 4 * 1, two.ExchangeMessages);
        Assert.Equal(0, LayoutCosts.Of(spec, new ParallelLayout(2, 1), 32).ExchangeBytes);   // pure data parallel: no exchange
    }

    [Fact]
    public void TheFitRecoversTheConstantsOfItsObservations()
    {
        var truth = new StepTimeModel { ThreadGflops = 20, StateGBps = 2, Cores = 2, MessageSeconds = 0.002, ExchangeGBps = 0.5, RingStepSeconds = 0.001, AllReduceGBps = 1.0 };
        StepObservation Obs(double flops, double state, int threads, int ranks, long messages, double xBytes, double arBytes, double spareCoreSpeedup = 1)
        {
            double share = truth.CoreShare(threads, ranks);
            return new(flops, state, threads, ranks, truth.Compute(flops, state, threads, ranks) / spareCoreSpeedup, messages, xBytes, truth.Exchange(messages, xBytes, share),
                       arBytes, truth.AllReduce(ranks, arBytes, share));
        }
        var rows = new[]
        {
            Obs(4e9, 2e8, 2, 1, 0, 0, 0), Obs(8e9, 1e8, 2, 1, 0, 0, 0),
            Obs(4e9, 2e8, 1, 1, 0, 0, 0, spareCoreSpeedup: 1.4),              // one thread with a core to spare runs faster: not fitted on
            Obs(2e9, 3e8, 1, 2, 12, 1e6, 4e5), Obs(4e9, 1e8, 1, 2, 12, 4e6, 4e5 * 1.5), Obs(6e9, 4e8, 1, 2, 12, 9e6, 4e5 * 2),
        };
        var fit = StepTimeModel.Fit(rows, cores: 2, gemmPeakGflops: 80, memoryGBps: 16);
        Assert.Equal(20, fit.ThreadGflops, 6);
        Assert.Equal(2, fit.StateGBps, 6);
        Assert.Equal(0.5, fit.ComputeEfficiency, 6);
        Assert.Equal(0.25, fit.ParameterPathEfficiency, 6);
        Assert.Equal(0.002, fit.MessageSeconds, 6);
        Assert.Equal(0.5, fit.ExchangeGBps, 4);
        Assert.Equal(0.001, fit.RingStepSeconds, 6);
        Assert.Equal(1.0, fit.AllReduceGBps, 4);
        // 4 ranks on 2 cores: each thread gets half a core, for its compute and for its share of the exchange
        Assert.Equal(2 * truth.Compute(4e9, 2e8, 1, 1), fit.Compute(4e9, 2e8, 1, 4), 6);
        Assert.Equal(2 * truth.Exchange(36, 1e6), fit.Predict(0, 0, 1, 4, 36, 1e6, 1, 0), 6);
    }

    [Fact]
    public void WithoutAParameterPathInItsObservationsTheFitIsFlopsOnly()
    {
        var truth = new StepTimeModel { ThreadGflops = 20, Cores = 2 };
        var rows = new[] { 2e9, 4e9, 6e9 }.Select(f => new StepObservation(f, f / 10, 1, 2, truth.Compute(f, 0, 1, 2), 0, 0, 0, 0, 0)).ToList();
        var fit = StepTimeModel.Fit(rows, cores: 2, gemmPeakGflops: 80);
        Assert.Equal(20, fit.ThreadGflops, 6);
        Assert.Equal(0, fit.StateGBps);                                // collinear columns: no state term is invented
        Assert.Equal(0, fit.ParameterPathEfficiency);
        Assert.Equal(truth.Compute(3e9, 0, 1, 4), fit.Compute(3e9, 123e6, 1, 4), 9);
    }
}
