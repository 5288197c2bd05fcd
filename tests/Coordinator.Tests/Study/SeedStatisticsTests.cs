using Jetpack.Cli.Study;

namespace Jetpack.Coordinator.Tests.Study;

/// <summary>Issue 17: the intervals the study reports, against values computed by hand from the t-distribution.</summary>
public sealed class SeedStatisticsTests
{
    [Fact]
    public void TheIntervalOfThreeSeedsIsMeanPlusMinusT2TimesTheStandardError()
    {
        // values 0.70, 0.72, 0.74: mean 0.72, sample sd 0.02, t(0.975, 2) = 4.303 → half-width 4.303·0.02/√3 = 0.049687
        var i = SeedStatistics.Of([0.70, 0.72, 0.74]);
        Assert.Equal(0.72, i.Mean, 12);
        Assert.Equal(0.02, i.StdDev, 12);
        Assert.Equal(0.72 - 0.0496868, i.Lo, 6);
        Assert.Equal(0.72 + 0.0496868, i.Hi, 6);
        Assert.True(i.AboveZero);
    }

    [Theory]
    [InlineData(1, 12.706)]
    [InlineData(2, 4.303)]
    [InlineData(4, 2.776)]
    [InlineData(30, 2.042)]
    [InlineData(60, 2.000)]
    [InlineData(120, 1.980)]
    public void TQuantilesMatchTheTable(int df, double expected) => Assert.Equal(expected, SeedStatistics.TQuantile975(df), 2);

    [Fact]
    public void OneSeedHasNoIntervalAndDecidesNothing()
    {
        var i = SeedStatistics.Of([0.5]);
        Assert.Equal(0.5, i.Mean);
        Assert.True(double.IsNaN(i.Lo) && double.IsNaN(i.Hi));
        Assert.False(i.AboveZero);
        Assert.False(i.BelowZero);
    }

    [Fact]
    public void PairingCancelsWhatTheSeedsShare()
    {
        // Row a is row b plus 1 point on every seed, while the seeds differ by 10 points: unpaired intervals overlap,
        // the paired difference is exactly +0.01 with zero width.
        var a = new Dictionary<int, double> { [0] = 0.61, [1] = 0.71, [2] = 0.81 };
        var b = new Dictionary<int, double> { [0] = 0.60, [1] = 0.70, [2] = 0.80 };
        Assert.True(SeedStatistics.Of(a.Values.ToList()).Lo < SeedStatistics.Of(b.Values.ToList()).Hi);
        var d = SeedStatistics.Paired(a, b);
        Assert.Equal(0.01, d.Mean, 12);
        Assert.Equal(0.01, d.Lo, 12);
        Assert.True(d.AboveZero);
    }

    [Fact]
    public void PairsOnlySharedSeedsAndRefusesRowsWithNone()
    {
        var d = SeedStatistics.Paired(new Dictionary<int, double> { [0] = 1, [1] = 2, [5] = 9 }, new Dictionary<int, double> { [0] = 0, [1] = 0 });
        Assert.Equal(2, d.N);
        Assert.Throws<ArgumentException>(() => SeedStatistics.Paired(new Dictionary<int, double> { [0] = 1 }, new Dictionary<int, double> { [1] = 1 }));
        Assert.Throws<ArgumentException>(() => SeedStatistics.Of([0.5, double.NaN]));
    }
}
