namespace Jetpack.Cli.Study;

/// <summary>
/// A mean over seeds with its sample standard deviation and a two-sided 95 % confidence interval from
/// Student's t-distribution (n − 1 degrees of freedom). With one seed there is no interval: Lo and Hi are NaN.
/// </summary>
public sealed record Interval(double Mean, double StdDev, int N, double Lo, double Hi)
{
    /// <summary>Whether the whole interval lies above zero (a difference that holds with 95 % confidence).</summary>
    public bool AboveZero => N >= 2 && Lo > 0;
    public bool BelowZero => N >= 2 && Hi < 0;
    public double HalfWidth => (Hi - Lo) / 2;
}

/// <summary>Confidence intervals over seeds (issue 17): per row and for paired differences between rows.</summary>
public static class SeedStatistics
{
    // Two-sided 95 % quantiles t_{0.975, df} for df = 1..30; beyond 30 the normal quantile is within 2 %.
    static readonly double[] T975 =
    [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];

    /// <summary>t_{0.975, df}: the half-width of a 95 % interval in standard errors.</summary>
    public static double TQuantile975(int df) =>
        df < 1 ? throw new ArgumentOutOfRangeException(nameof(df), df, "needs ≥ 1 degree of freedom")
        : df <= T975.Length ? T975[df - 1] : 1.960 + 2.4 / df;   // 2.4/df: within 0.1 % of the true quantile for df > 30

    /// <summary>Mean, sample standard deviation and 95 % t-interval of <paramref name="values"/> (NaNs are refused).</summary>
    public static Interval Of(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("no values: an interval needs at least one seed");
        if (values.Any(double.IsNaN)) throw new ArgumentException("a seed's value is NaN");
        int n = values.Count;
        double mean = values.Average();
        if (n == 1) return new Interval(mean, double.NaN, 1, double.NaN, double.NaN);
        double sd = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (n - 1));
        double half = TQuantile975(n - 1) * sd / Math.Sqrt(n);
        return new Interval(mean, sd, n, mean - half, mean + half);
    }

    /// <summary>
    /// The paired difference a − b over the seeds both have (seed s of one row against seed s of the other: the
    /// same data order, upstream and eval images), which cancels what the seeds share and so is tighter than
    /// comparing two independent intervals.
    /// </summary>
    public static Interval Paired(IReadOnlyDictionary<int, double> a, IReadOnlyDictionary<int, double> b)
    {
        var seeds = a.Keys.Intersect(b.Keys).Order().ToList();
        if (seeds.Count == 0) throw new ArgumentException("the two rows share no seed");
        return Of(seeds.Select(s => a[s] - b[s]).ToList());
    }
}
