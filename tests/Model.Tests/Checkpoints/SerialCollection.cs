namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>
/// Tests that measure process-wide quantities (managed allocations, live tensor count, throughput)
/// run alone: xunit otherwise runs test classes in parallel and their allocations would count.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "serial: process-wide measurements";
}
