namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>A heartbeat from a worker that never registered (or whose registration was lost).</summary>
public sealed class UnknownWorkerException(string workerId)
    : InvalidOperationException($"worker '{workerId}' is not registered: register before sending heartbeats");
