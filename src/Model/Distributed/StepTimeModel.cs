namespace Jetpack.Model.Distributed;

/// <summary>One measured step of one layout: what <see cref="StepTimeModel.Fit"/> learns from.</summary>
public sealed record StepObservation(double ComputeFlops, int ThreadsPerRank, int Ranks, double ComputeSeconds,
                                     long ExchangeMessages, double ExchangeBytes, double ExchangeSeconds,
                                     double AllReduceBytes, double AllReduceSeconds);

/// <summary>
/// The step-time model of <c>jetpack plan</c>: step = compute + all-to-all + all-reduce, with
/// compute = FLOPs / (per-thread rate × threads × the share of a core each thread gets),
/// all-to-all = messages × per-message cost + bytes / bandwidth, and
/// all-reduce = 2(n−1) ring steps × per-step cost + bytes / bandwidth. The constants are fitted
/// (least squares, one variable at a time) on measured steps; <see cref="ComputeEfficiency"/> relates
/// the per-thread rate to this machine's fp32 GEMM peak so that a GPU's TFLOP/s can be scaled by it.
/// </summary>
public sealed record StepTimeModel
{
    public double ThreadGflops { get; init; }
    public double GemmPeakGflops { get; init; }
    public int Cores { get; init; }
    /// <summary>Achieved training FLOP/s over the GEMM peak of the same threads.</summary>
    public double ComputeEfficiency { get; init; }
    public double MessageSeconds { get; init; }
    public double ExchangeGBps { get; init; }
    public double RingStepSeconds { get; init; }
    public double AllReduceGBps { get; init; }

    /// <summary>The share of a core each of <paramref name="threads"/> threads of <paramref name="ranks"/> ranks gets.</summary>
    public double CoreShare(int threads, int ranks) => Math.Min(1.0, (double)Cores / (threads * ranks));

    public double Compute(double flops, int threads, int ranks) => flops / (ThreadGflops * 1e9 * threads * CoreShare(threads, ranks));
    public double Exchange(long messages, double bytes) => messages == 0 ? 0 : messages * MessageSeconds + bytes / (ExchangeGBps * 1e9);
    public double AllReduce(int ringSize, double bytes) => ringSize <= 1 ? 0 : 2 * (ringSize - 1) * RingStepSeconds + bytes / (AllReduceGBps * 1e9);

    public double Predict(double flops, int threads, int ranks, long messages, double exchangeBytes, int ringSize, double allReduceBytes) =>
        Compute(flops, threads, ranks) + Exchange(messages, exchangeBytes) + AllReduce(ringSize, allReduceBytes);

    /// <param name="gemmPeakGflops">fp32 GEMM rate of <paramref name="cores"/> threads on this machine, measured in the same run</param>
    public static StepTimeModel Fit(IReadOnlyList<StepObservation> rows, int cores, double gemmPeakGflops)
    {
        if (rows.Count == 0) throw new ArgumentException("no measured rows to fit");
        // compute: Σ (FLOPs / threads / share) = rate · Σ seconds
        var probe = new StepTimeModel { Cores = cores, ThreadGflops = 1 };
        double work = rows.Sum(r => r.ComputeFlops / (r.ThreadsPerRank * probe.CoreShare(r.ThreadsPerRank, r.Ranks)));
        double thread = work / rows.Sum(r => r.ComputeSeconds) / 1e9;
        var (msg, exGBps) = Line(rows.Where(r => r.ExchangeMessages > 0).Select(r => ((double)r.ExchangeMessages, r.ExchangeBytes, r.ExchangeSeconds)).ToList());
        var (ring, arGBps) = Line(rows.Where(r => r.Ranks > 1).Select(r => (2.0 * (r.Ranks - 1), r.AllReduceBytes, r.AllReduceSeconds)).ToList());
        return new StepTimeModel
        {
            ThreadGflops = thread, GemmPeakGflops = gemmPeakGflops, Cores = cores,
            ComputeEfficiency = gemmPeakGflops > 0 ? thread * cores / gemmPeakGflops : double.NaN,
            MessageSeconds = msg, ExchangeGBps = exGBps, RingStepSeconds = ring, AllReduceGBps = arGBps,
        };
    }

    /// <summary>
    /// seconds ≈ count · a + bytes / b: least squares of seconds/count on bytes/count (a line with an
    /// intercept); with one distinct point (or a non-positive slope) the intercept is 0 and b = Σ bytes / Σ seconds.
    /// </summary>
    static (double PerItem, double GBps) Line(List<(double Count, double Bytes, double Seconds)> points)
    {
        if (points.Count == 0) return (0, double.PositiveInfinity);
        var xs = points.Select(p => p.Bytes / p.Count).ToArray();
        var ys = points.Select(p => p.Seconds / p.Count).ToArray();
        double mx = xs.Average(), my = ys.Average();
        double sxx = xs.Sum(x => (x - mx) * (x - mx)), sxy = xs.Zip(ys, (x, y) => (x - mx) * (y - my)).Sum();
        if (sxx > 0 && sxy > 0)
        {
            double slope = sxy / sxx, intercept = my - slope * mx;
            if (intercept >= 0) return (intercept, 1 / slope / 1e9);
        }
        return (0, points.Sum(p => p.Bytes) / points.Sum(p => p.Seconds) / 1e9);
    }
}
