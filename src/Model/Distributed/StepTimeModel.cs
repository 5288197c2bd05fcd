namespace Jetpack.Model.Distributed;

/// <summary>One measured step of one layout: what <see cref="StepTimeModel.Fit"/> learns from.</summary>
/// <param name="StateBytes">parameters + AdamW moments the rank holds (its experts and the replicated layers)</param>
public sealed record StepObservation(double ComputeFlops, double StateBytes, int ThreadsPerRank, int Ranks, double ComputeSeconds,
                                     long ExchangeMessages, double ExchangeBytes, double ExchangeSeconds,
                                     double AllReduceBytes, double AllReduceSeconds);

/// <summary>
/// The step-time model of <c>jetpack plan</c>: step = compute + all-to-all + all-reduce, where
/// <list type="bullet">
/// <item>compute = (FLOPs / FLOP rate + state bytes / parameter-path rate) / threads / the share of a
/// core each thread gets. The second term is the work that grows with parameters, not FLOPs (the
/// optimizer pass, gradient zeroing and writing, weights streamed through small GEMMs): issue 21
/// measured ~3.8 ms per million parameters on this CPU, and it does not shrink with FLOPs;</item>
/// <item>all-to-all = (messages × per-message cost + bytes / bandwidth) / core share, and all-reduce =
/// (2(n−1) ring steps × per-step cost + bytes / bandwidth) / core share: both are CPU work (copies,
/// framing, sums) that stretches when ranks share cores.</item>
/// </list>
/// The rates are fitted (least squares) on measured steps, the compute rates on the rows where every
/// core is busy: a single rank with a core to spare has the memory system to itself and runs faster
/// per thread than ranks that share it. <see cref="ComputeEfficiency"/> and
/// <see cref="ParameterPathEfficiency"/> relate the rates to this machine's fp32 GEMM peak and memory
/// bandwidth, so that a GPU's TFLOP/s and memory bandwidth can be scaled by them.
/// </summary>
public sealed record StepTimeModel
{
    /// <summary>FLOP/s of one thread while every core is busy.</summary>
    public double ThreadGflops { get; init; }
    /// <summary>State bytes (parameters + AdamW moments) one thread's step gets through per second while every core is busy; 0: no such term (not fitted).</summary>
    public double StateGBps { get; init; }
    public double GemmPeakGflops { get; init; }
    /// <summary>The memory bandwidth of all cores (C# triad), measured in the same run; 0 where unknown.</summary>
    public double MemoryGBps { get; init; }
    public int Cores { get; init; }
    /// <summary>Achieved training FLOP/s over the GEMM peak of the same threads.</summary>
    public double ComputeEfficiency { get; init; }
    /// <summary>State bytes per second over the memory bandwidth of the same threads (0 where either is unknown).</summary>
    public double ParameterPathEfficiency { get; init; }
    public double MessageSeconds { get; init; }
    public double ExchangeGBps { get; init; }
    public double RingStepSeconds { get; init; }
    public double AllReduceGBps { get; init; }

    /// <summary>The share of a core each of <paramref name="threads"/> threads of <paramref name="ranks"/> ranks gets.</summary>
    public double CoreShare(int threads, int ranks) => Math.Min(1.0, (double)Cores / (threads * ranks));

    public double Compute(double flops, double stateBytes, int threads, int ranks) =>
        (flops / (ThreadGflops * 1e9) + (StateGBps > 0 ? stateBytes / (StateGBps * 1e9) : 0)) / (threads * CoreShare(threads, ranks));

    public double Exchange(long messages, double bytes, double coreShare = 1) =>
        messages == 0 ? 0 : (messages * MessageSeconds + bytes / (ExchangeGBps * 1e9)) / coreShare;

    public double AllReduce(int ringSize, double bytes, double coreShare = 1) =>
        ringSize <= 1 ? 0 : (2 * (ringSize - 1) * RingStepSeconds + bytes / (AllReduceGBps * 1e9)) / coreShare;

    public double Predict(double flops, double stateBytes, int threads, int ranks, long messages, double exchangeBytes, int ringSize, double allReduceBytes)
    {
        double share = CoreShare(threads, ranks);
        return Compute(flops, stateBytes, threads, ranks) + Exchange(messages, exchangeBytes, share) + AllReduce(ringSize, allReduceBytes, share);
    }

    /// <param name="gemmPeakGflops">fp32 GEMM rate of <paramref name="cores"/> threads on this machine, measured in the same run</param>
    /// <param name="memoryGBps">memory bandwidth of <paramref name="cores"/> threads, measured in the same run (0: unknown)</param>
    public static StepTimeModel Fit(IReadOnlyList<StepObservation> rows, int cores, double gemmPeakGflops, double memoryGBps = 0)
    {
        if (rows.Count == 0) throw new ArgumentException("no measured rows to fit");
        var probe = new StepTimeModel { Cores = cores };
        double Share(StepObservation r) => probe.CoreShare(r.ThreadsPerRank, r.Ranks);
        var busy = rows.Where(r => r.ThreadsPerRank * r.Ranks >= cores).ToList();
        if (busy.Count == 0) busy = rows.ToList();
        // seconds · threads · share = FLOPs / rate + state / state rate
        var (perFlop, perByte) = TwoRates(busy.Select(r => (r.ComputeFlops, r.StateBytes, r.ComputeSeconds * r.ThreadsPerRank * Share(r))).ToList());
        var (msg, exGBps) = Line(rows.Where(r => r.ExchangeMessages > 0).Select(r => ((double)r.ExchangeMessages, r.ExchangeBytes, r.ExchangeSeconds * Share(r))).ToList());
        var (ring, arGBps) = Line(rows.Where(r => r.Ranks > 1).Select(r => (2.0 * (r.Ranks - 1), r.AllReduceBytes, r.AllReduceSeconds * Share(r))).ToList());
        double thread = 1 / perFlop / 1e9, state = perByte > 0 ? 1 / perByte / 1e9 : 0;
        return new StepTimeModel
        {
            ThreadGflops = thread, StateGBps = state, GemmPeakGflops = gemmPeakGflops, MemoryGBps = memoryGBps, Cores = cores,
            ComputeEfficiency = gemmPeakGflops > 0 ? thread * cores / gemmPeakGflops : double.NaN,
            ParameterPathEfficiency = memoryGBps > 0 ? state * cores / memoryGBps : 0,
            MessageSeconds = msg, ExchangeGBps = exGBps, RingStepSeconds = ring, AllReduceGBps = arGBps,
        };
    }

    /// <summary>
    /// seconds ≈ flops · a + bytes · b, least squares through the origin with a, b ≥ 0; when the
    /// two-variable solution has a non-positive coefficient (or the columns are collinear), b = 0 and
    /// a = Σ seconds / Σ flops.
    /// </summary>
    static (double PerFlop, double PerByte) TwoRates(List<(double Flops, double Bytes, double Seconds)> points)
    {
        double ff = 0, fb = 0, bb = 0, fs = 0, bs = 0;
        foreach (var (f, b, s) in points) { ff += f * f; fb += f * b; bb += b * b; fs += f * s; bs += b * s; }
        double det = ff * bb - fb * fb;
        if (det > 1e-9 * ff * bb)
        {
            double a = (fs * bb - bs * fb) / det, b = (bs * ff - fs * fb) / det;
            if (a > 0 && b > 0) return (a, b);
        }
        return (points.Sum(p => p.Seconds) / points.Sum(p => p.Flops), 0);
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
