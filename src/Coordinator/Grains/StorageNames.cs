namespace Jetpack.Coordinator.Grains;

/// <summary>Names of the grain storage providers (files on one machine, Redis on a cluster).</summary>
public static class StorageNames
{
    public const string Jobs = "jobs";
}
