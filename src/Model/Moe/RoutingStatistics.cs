using static TorchSharp.torch;

namespace Jetpack.Model.Moe;

/// <summary>
/// Cheap per-layer routing statistics of one SpheroMoE forward (DESIGN.md "Telemetry": slot-load
/// statistics), plain numbers so that telemetry lives outside src/Model. Dispatch weights are a
/// softmax over tokens (spec §3.2 step 5), so every slot receives a dispatch mass of exactly 1 per
/// image; the load that can be unequal is on the token side: a token's dispatch mass
/// m[b, n] = Σ_j D[b, n, j] is how much of the slots' input it supplies. <see cref="DispatchMassMean"/>
/// is j/n by construction (a reference line); <see cref="DispatchMassMax"/> above it shows tokens that
/// dominate many slots. <see cref="CombineEntropy"/> is the mean over tokens of −Σ_j C log C (nats):
/// low = a token reads few slots (1.5-entmax gives exact zeros, 0·log 0 = 0).
/// </summary>
public sealed record RoutingStatistics(int Layer, double DispatchMassMax, double DispatchMassMean, double CombineEntropy)
{
    /// <summary>From dispatch and combine weights [b, n, j]; runs under no_grad (a few reductions and one sync per value).</summary>
    public static RoutingStatistics Of(int layer, Tensor dispatch, Tensor combine)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var mass = dispatch.detach().sum(-1);                                               // [b, n]
        var c = combine.detach();
        var entropy = -(c * c.clamp_min(1e-30).log()).sum(-1);                              // [b, n]; 0·log 0 → 0
        return new RoutingStatistics(layer, mass.max().to_type(ScalarType.Float64).item<double>(), mass.mean().to_type(ScalarType.Float64).item<double>(), entropy.mean().to_type(ScalarType.Float64).item<double>());
    }
}
