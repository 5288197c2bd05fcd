namespace Jetpack.Coordinator.Tests.Support;

/// <summary>
/// Tests that host a coordinator in this process run one after another: OpenTelemetry listens to
/// meters by name process-wide, so two hosts at once would each export the other's gauges.
/// </summary>
[CollectionDefinition(Name)]
public sealed class InProcessCoordinators
{
    public const string Name = "in-process coordinators";
}
