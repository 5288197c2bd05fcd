using static TorchSharp.torch;

namespace Jetpack.Model.Data.Augment;

/// <summary>
/// Scalar random draws for the augmentations (spec §7.2), all taken from an explicit
/// <see cref="Generator"/> so a sample's augmentation depends only on its seed, never on the
/// thread that decodes it or on the global RNG. Uniforms are drawn from the generator in blocks
/// of 64 float64 values (one tensor per block, not per draw); the normal, Beta and integer draws
/// are computed from those uniforms here. Not thread-safe: one instance per call.
/// </summary>
public sealed class AugmentRandom
{
    private const int BlockSize = 64;
    private readonly Generator _generator;
    private readonly double[] _block = new double[BlockSize];
    private int _next = BlockSize;

    public AugmentRandom(Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        _generator = generator;
    }

    public Generator Generator => _generator;

    /// <summary>
    /// A sample's seed from (run seed, epoch, dataset index): SplitMix64 finalisers chained over the
    /// three values, so neighbouring indices or epochs give unrelated streams.
    /// </summary>
    public static ulong SampleSeed(long seed, int epoch, long index) =>
        Mix(Mix(Mix((ulong)seed) ^ (ulong)(uint)epoch) ^ (ulong)index);

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform on [0, 1).</summary>
    public double Uniform()
    {
        if (_next == BlockSize)
        {
            using var scope = NewDisposeScope();
            var block = rand([BlockSize], ScalarType.Float64, generator: _generator);   // [64]
            block.data<double>().CopyTo(_block);
            _next = 0;
        }
        return _block[_next++];
    }

    /// <summary>Uniform on [low, high).</summary>
    public double Uniform(double low, double high) => low + (high - low) * Uniform();

    /// <summary>Integer uniform on [low, high) (exclusive upper bound, like numpy's randint).</summary>
    public int Int(int low, int high)
    {
        if (high <= low) throw new ArgumentOutOfRangeException(nameof(high), $"empty range [{low}, {high})");
        return low + Math.Min((int)(Uniform() * (high - low)), high - low - 1);
    }

    /// <summary>True with probability <paramref name="p"/>.</summary>
    public bool Bernoulli(double p) => Uniform() < p;

    /// <summary>Standard normal by Box–Muller (one of the pair; simplicity over speed).</summary>
    public double Normal()
    {
        double u1 = 1.0 - Uniform();                      // (0, 1], keeps the log finite
        double u2 = Uniform();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>Gamma(shape, 1) by Marsaglia–Tsang; shape &lt; 1 through Gamma(shape + 1) · U^(1/shape).</summary>
    public double Gamma(double shape)
    {
        if (!(shape > 0)) throw new ArgumentOutOfRangeException(nameof(shape), $"shape must be positive, got {shape}");
        if (shape < 1)
            return Gamma(shape + 1) * Math.Pow(1.0 - Uniform(), 1.0 / shape);
        double d = shape - 1.0 / 3.0, c = 1.0 / Math.Sqrt(9.0 * d);
        while (true)
        {
            double x, v;
            do { x = Normal(); v = 1.0 + c * x; } while (v <= 0);
            v = v * v * v;
            double u = 1.0 - Uniform();
            if (Math.Log(u) < 0.5 * x * x + d - d * v + d * Math.Log(v)) return d * v;
        }
    }

    /// <summary>Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b): Mixup's and CutMix's λ (spec §7.2).</summary>
    public double Beta(double a, double b)
    {
        double x = Gamma(a), y = Gamma(b);
        return x / (x + y);
    }
}
