using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Jobs;
using Jetpack.Coordinator.Recycling;

namespace Jetpack.Coordinator.Tests.Support;

/// <summary>Counts recyclings; the key is the real <see cref="RecycleKey"/>; <see cref="Gate"/> holds a recycling until released.</summary>
public sealed class FakeRecycler(string directory) : IRecyclingService
{
    int calls;
    public int Calls => Volatile.Read(ref calls);
    public TaskCompletionSource Gate { get; set; } = Released();
    public string? FailWith { get; set; }

    static TaskCompletionSource Released() { var t = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously); t.SetResult(); return t; }

    public Task<string> ComputeKeyAsync(string model, RecycleSpec spec, CancellationToken cancel) =>
        Task.FromResult(RecycleKey.Compute(model, spec, Jetpack.Model.Checkpoints.Sha256Hex.OfFile));

    public async Task<RecycledCheckpoint> RecycleAsync(RecycleRequest request, CancellationToken cancel)
    {
        Interlocked.Increment(ref calls);
        await Gate.Task.WaitAsync(cancel);
        if (FailWith is { } message) throw new InvalidOperationException(message);
        string path = Path.Combine(directory, request.Key + ".safetensors");
        await File.WriteAllTextAsync(path, "fake", cancel);
        return new RecycledCheckpoint(request.Key, path, path + ".report.json", 0.01);
    }
}
