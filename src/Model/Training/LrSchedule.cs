namespace Jetpack.Model.Training;

/// <summary>
/// The lr factor (multiplying each group's lr) at each optimiser step, spec §7.2: linear warmup
/// from <see cref="StartFactor"/> (1e-3) to 1 over <see cref="WarmupSteps"/>, updated every
/// iteration, then cosine annealing from 1 to <see cref="MinFactor"/> (0.01: η_min is 1% of each
/// group's lr) over the remaining steps. Steps past the end stay at <see cref="MinFactor"/>.
/// The released config updates the cosine once per **epoch** (T_max = 280 epochs): set
/// <see cref="CosineStepsPerEpoch"/> to the steps per epoch to reproduce that (the factor then
/// holds constant within an epoch); 0 (default) updates it every iteration, as the paper reads.
/// </summary>
public sealed record LrSchedule
{
    public LrSchedule(long warmupSteps, long totalSteps, double startFactor = 1e-3, double minFactor = 0.01, long cosineStepsPerEpoch = 0)
    {
        if (warmupSteps < 0 || totalSteps < 1 || warmupSteps > totalSteps)
            throw new ArgumentException($"need 0 ≤ warmup ({warmupSteps}) ≤ total ({totalSteps}) and total ≥ 1");
        if (startFactor is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(startFactor), $"start factor must be in (0, 1], got {startFactor}");
        if (minFactor is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(minFactor), $"min factor must be in [0, 1], got {minFactor}");
        if (cosineStepsPerEpoch < 0) throw new ArgumentOutOfRangeException(nameof(cosineStepsPerEpoch), $"must be ≥ 0, got {cosineStepsPerEpoch}");
        if (cosineStepsPerEpoch > 0 && (warmupSteps % cosineStepsPerEpoch != 0 || totalSteps % cosineStepsPerEpoch != 0))
            throw new ArgumentException($"per-epoch cosine needs warmup ({warmupSteps}) and total ({totalSteps}) to be whole epochs of {cosineStepsPerEpoch} steps");
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
        StartFactor = startFactor;
        MinFactor = minFactor;
        CosineStepsPerEpoch = cosineStepsPerEpoch;
    }

    /// <summary>The spec's schedule in epochs: warmup and total epochs times the steps per epoch.</summary>
    public static LrSchedule FromEpochs(int warmupEpochs, int totalEpochs, long stepsPerEpoch, bool cosinePerEpoch = false,
        double startFactor = 1e-3, double minFactor = 0.01) =>
        new(warmupEpochs * stepsPerEpoch, totalEpochs * stepsPerEpoch, startFactor, minFactor, cosinePerEpoch ? stepsPerEpoch : 0);

    public long WarmupSteps { get; }
    public long TotalSteps { get; }
    public double StartFactor { get; }
    public double MinFactor { get; }
    public long CosineStepsPerEpoch { get; }

    /// <summary>The factor for the update made at 0-based step <paramref name="step"/>.</summary>
    public double Factor(long step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), $"step must be ≥ 0, got {step}");
        if (step < WarmupSteps)
            return StartFactor + (1 - StartFactor) * step / WarmupSteps;
        long t = step - WarmupSteps, span = TotalSteps - WarmupSteps;
        if (t >= span) return MinFactor;
        if (CosineStepsPerEpoch > 0) t -= t % CosineStepsPerEpoch;   // hold within the epoch
        return MinFactor + (1 - MinFactor) * 0.5 * (1 + Math.Cos(Math.PI * t / span));
    }
}
