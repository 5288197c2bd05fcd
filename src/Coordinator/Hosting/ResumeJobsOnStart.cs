using Jetpack.Coordinator.Grains.Contracts;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Jetpack.Coordinator.Hosting;

/// <summary>
/// When the host has started: activates the worker pool (its liveness timer) and asks every live
/// job to resume where its persisted phase says (after a coordinator restart).
/// </summary>
public sealed class ResumeJobsOnStart(IGrainFactory grains, IHostApplicationLifetime lifetime, Telemetry.CoordinatorMetrics metrics, ILogger<ResumeJobsOnStart> log) : IHostedService
{
    // Taking the metrics here creates the meter at start, so /metrics lists the gauges before any grain ran.
    readonly Telemetry.CoordinatorMetrics metrics = metrics;

    public Task StartAsync(CancellationToken cancel)
    {
        lifetime.ApplicationStarted.Register(() => _ = Task.Run(ResumeAsync, CancellationToken.None));
        return Task.CompletedTask;
    }

    async Task ResumeAsync()
    {
        try
        {
            await grains.GetGrain<IWorkerPoolGrain>(0).CheckLiveness();
            foreach (var id in await grains.GetGrain<IJobIndexGrain>(0).List())
                await grains.GetGrain<IJobGrain>(id).Resume();
        }
        catch (Exception e)
        {
            log.LogError(e, "resuming jobs after start failed");
        }
    }

    public Task StopAsync(CancellationToken cancel) => Task.CompletedTask;
}
