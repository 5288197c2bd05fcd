using Jetpack.Model.Moe;

namespace Jetpack.Application.Training;

/// <summary>
/// What leaves a step about one MoE layer's routing (issue 19, "telemetry at scale"): a fixed number of
/// numbers at any expert count — the busiest expert's share of the combine mass
/// (<see cref="RoutingStatistics.MaxLoadShare"/>; 1/E when balanced), the normalised load entropy
/// (<see cref="RoutingStatistics.LoadBalance"/>; 1 = balanced), the mean combine entropy per token
/// (nats) and the <see cref="TopExperts"/> busiest expert ids with their shares. It is what
/// metrics.jsonl writes and what a worker's <c>Progress.routing</c> carries (worker_control.proto).
/// </summary>
public sealed record RoutingSummary(int Layer, int Experts, double MaxLoadShare, double LoadBalance, double CombineEntropy,
                                    IReadOnlyList<(int Expert, double Share)> Top)
{
    /// <summary>Busiest experts kept per layer: the summary is 5 + 2·8 numbers at any E.</summary>
    public const int TopExperts = 8;

    public static RoutingSummary Of(RoutingStatistics s) =>
        new(s.Layer, s.ExpertLoad.Count, s.MaxLoadShare, s.LoadBalance, s.CombineEntropy, s.TopExperts(TopExperts));
}
