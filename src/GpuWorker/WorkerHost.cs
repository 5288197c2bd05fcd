using Jetpack.GpuWorker.Control;
using Jetpack.GpuWorker.Hosting;
using Microsoft.AspNetCore.Builder;

namespace Jetpack.GpuWorker;

/// <summary>
/// The worker's composition root: a <see cref="WorkerNode"/> (Hosting: Kestrel, membership, data
/// plane) serving the <see cref="WorkerControlService"/> (Control), which drives that node. Kept
/// apart so that neither namespace imports the other both ways.
/// </summary>
public static class WorkerHost
{
    public static Task<WorkerNode> StartAsync(WorkerOptions options) =>
        WorkerNode.StartAsync(options, app => app.MapGrpcService<WorkerControlService>());
}
