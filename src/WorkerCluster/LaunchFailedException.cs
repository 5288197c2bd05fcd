namespace Jetpack.WorkerCluster;

/// <summary>A launch that failed; <see cref="Exception.Message"/> includes every worker's exit code and stderr tail.</summary>
public sealed class LaunchFailedException(string message, string report) : Exception($"{message}\n{report}");
