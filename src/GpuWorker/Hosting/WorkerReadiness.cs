namespace Jetpack.GpuWorker.Hosting;

/// <summary>The line a worker prints on stdout once it serves gRPC (the launcher's readiness signal).</summary>
public static class WorkerReadiness
{
    public const string Prefix = "jetpack-worker ready";
}
