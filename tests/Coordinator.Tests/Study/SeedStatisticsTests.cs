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

/// <summary>The study report over seeds, from made-up results: intervals, paired claims, JSON without NaN.</summary>
public sealed class StudyReportSeedTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("jetpack-report-").FullName;
    public void Dispose() => Directory.Delete(dir, recursive: true);

    static RunResult Result(string id, int seed, double final, long reachAt)
    {
        var run = StudyPlan.Runs.Single(r => r.Id == id);
        var curve = new List<(long, double)> { (10, final - 0.2), (reachAt, final - 0.01), (40, final) };
        return new RunResult(run, curve.OrderBy(c => c.Item1).DistinctBy(c => c.Item1).ToList(), final, 0.99, 100 + seed, 40) { SeedIndex = seed, Seed = 3407 + 1000UL * (ulong)seed };
    }

    [Fact]
    public void ThreeSeedsGiveIntervalsVerdictsAndFiniteJson()
    {
        var results = new List<RunResult>();
        for (int s = 0; s < 3; s++)
        {
            results.Add(Result("soft_moe_scratch", s, 0.70 + 0.01 * s, 40));
            results.Add(Result("dense_upstream", s, 0.76 + 0.01 * s, 40));
            results.Add(Result("jetpack", s, 0.78 + 0.01 * s + 0.002 * s * s, 20));   // +8 points on every seed, reaches Soft MoE's final by step 20
            results.Add(Result("recycle_random", s, 0.78 + 0.01 * s + 0.003 * (1 - s), 20));
        }
        new StudyReport(StudyPlan.Smoke with { DownstreamSteps = 40, Evaluations = 4 }, results, new Dictionary<string, double?> { ["x"] = 1, ["run jetpack seed 1"] = null }, 1).Write(dir);
        var md = File.ReadAllText(Path.Combine(dir, "results.md"));
        Assert.Contains("| MoE Jetpack > Soft MoE from scratch (top-1, paired) |", md);
        Assert.Contains("| holds |", md);
        Assert.Contains("not shown: the 95 % interval includes 0", md);   // importance vs random: differences +0.3, 0, −0.3 … points
        Assert.Contains("| run jetpack seed 1 | reused (done earlier) |", md);
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "results.json")));
        var jet = json.RootElement.GetProperty("rows").EnumerateArray().Single(r => r.GetProperty("id").GetString() == "jetpack");
        Assert.Equal(0.08 + 0.002 * 5 / 3.0, jet.GetProperty("delta_vs_soft_moe").GetProperty("mean").GetDouble(), 9);
        Assert.Equal(2.0, jet.GetProperty("speed_up_vs_soft_moe").GetProperty("mean").GetDouble(), 9);
    }

    [Fact]
    public void AStudyOfTable4AloneHasNoClaimsSection()
    {
        var grid = StudyPlan.Table4Runs.Take(2).ToList();
        var results = Enumerable.Range(0, 3).SelectMany(s => grid.Select(run =>
            new RunResult(run, [(10, 0.5), (40, 0.7 + 0.01 * s)], 0.7 + 0.01 * s, 0.99, 100, 40) { SeedIndex = s, Seed = 3407 + 1000UL * (ulong)s })).ToList();
        new StudyReport(StudyPlan.Smoke with { DownstreamSteps = 40, Evaluations = 4 }, results, new Dictionary<string, double?>(), 1).Write(dir);
        var md = File.ReadAllText(Path.Combine(dir, "results.md"));
        Assert.DoesNotContain("## Claims", md);
        Assert.DoesNotContain("not measured", md);
        Assert.Contains("## Table 4", md);
    }
}
