namespace Jetpack.Coordinator.Jobs;

/// <summary>
/// The recycling part of a job spec: the same choices as <c>jetpack recycle</c> (spec §5), which
/// the coordinator runs once per content key (<see cref="RecycleKey"/>).
/// </summary>
[GenerateSerializer]
public sealed record RecycleSpec
{
    /// <summary>Predecessor checkpoint (.safetensors or .pth): the experts' source.</summary>
    [Id(0)] public string From { get; init; } = "";
    [Id(1)] public string? FromVariant { get; init; }
    /// <summary>Target-width dense checkpoint: every non-expert weight (spec §5.6).</summary>
    [Id(2)] public string? Target { get; init; }
    [Id(3)] public string? TargetVariant { get; init; }
    [Id(4)] public string Method { get; init; } = "importance-l2";
    [Id(5)] public string DenseFrom { get; init; } = "target";
    [Id(6)] public long Seed { get; init; } = 3407;
    [Id(7)] public int GraphParts { get; init; } = 32;
    /// <summary>Activation statistics from <c>jetpack profile</c> (skips profiling).</summary>
    [Id(8)] public string? Stats { get; init; }
    /// <summary>Profile on Fashion-MNIST train images (Debian's dataset-fashion-mnist).</summary>
    [Id(9)] public bool ProfileFashionMnist { get; init; }
    /// <summary>Profile on an ImageFolder tree.</summary>
    [Id(10)] public string? ProfileImages { get; init; }
    [Id(11)] public string? ProfileClasses { get; init; }
    [Id(12)] public int ProfileCount { get; init; } = 38_400;
}
