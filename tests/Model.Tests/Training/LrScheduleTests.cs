using Jetpack.Model.Training;

namespace Jetpack.Model.Tests.Training;

public class LrScheduleTests
{
    [Fact]
    public void WarmupIsLinearFromStartFactorToOne()
    {
        var s = new LrSchedule(warmupSteps: 100, totalSteps: 1100);
        Assert.Equal(1e-3, s.Factor(0), 12);
        Assert.Equal(1e-3 + (1 - 1e-3) * 0.5, s.Factor(50), 12);
        Assert.Equal(1.0, s.Factor(100), 12);                       // cosine starts at its peak
    }

    [Fact]
    public void CosineRunsFromOneToMinFactor()
    {
        var s = new LrSchedule(warmupSteps: 100, totalSteps: 1100, minFactor: 0.01);
        Assert.Equal(0.01 + 0.99 * 0.5, s.Factor(600), 12);          // halfway through the cosine
        Assert.Equal(0.01 + 0.99 * 0.5 * (1 + Math.Cos(Math.PI * 0.25)), s.Factor(350), 12);
        Assert.Equal(0.01 + 0.99 * 0.5 * (1 + Math.Cos(Math.PI * 999 / 1000)), s.Factor(1099), 12);
        Assert.Equal(0.01, s.Factor(1100), 12);
        Assert.Equal(0.01, s.Factor(5000), 12);
    }

    [Fact]
    public void PerEpochCosineHoldsWithinAnEpoch()
    {
        // Released config: 20 warmup epochs per iteration, cosine over 280 epochs updated per epoch.
        var s = LrSchedule.FromEpochs(20, 300, stepsPerEpoch: 10, cosinePerEpoch: true);
        Assert.Equal(1e-3 + (1 - 1e-3) * 15 / 200.0, s.Factor(15), 12);   // warmup still per iteration
        Assert.Equal(1.0, s.Factor(209), 12);                             // epoch 20 holds the peak
        double epoch160 = 0.01 + 0.99 * 0.5 * (1 + Math.Cos(Math.PI * 140 / 280));
        Assert.Equal(epoch160, s.Factor(1600), 12);
        Assert.Equal(epoch160, s.Factor(1609), 12);
        Assert.NotEqual(epoch160, s.Factor(1610));
    }

    [Fact]
    public void NoWarmupStartsAtOne()
    {
        var s = new LrSchedule(0, 10);
        Assert.Equal(1.0, s.Factor(0), 12);
        Assert.Throws<ArgumentException>(() => new LrSchedule(11, 10));
        Assert.Throws<ArgumentException>(() => new LrSchedule(15, 100, cosineStepsPerEpoch: 10));
    }
}
