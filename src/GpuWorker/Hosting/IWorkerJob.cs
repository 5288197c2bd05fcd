using Jetpack.Protocol.Wire;

namespace Jetpack.GpuWorker.Hosting;

/// <summary>
/// The job a worker runs, as the node and the control service see it (implemented by
/// <c>Jobs.TrainingJob</c>): the node refuses a second job and aborts this one for a new run; the
/// control service starts, stops, checkpoints and streams it. Hosting names only this, so it does
/// not import the Jobs namespace that builds on it.
/// </summary>
public interface IWorkerJob
{
    string JobId { get; }
    /// <summary>The step the job starts at, once set-up is done (faults with set-up's error).</summary>
    Task<long> Started { get; }
    bool Finished { get; }
    /// <summary>Completes when the job's thread has released everything.</summary>
    Task Ended { get; }

    /// <summary>Stop after <paramref name="afterStep"/> (0 = after the running step); returns the step it will stop at.</summary>
    long RequestStop(long afterStep);

    /// <summary>Checkpoint after <paramref name="afterStep"/> (0 = after the running step).</summary>
    Task<long> RequestCheckpoint(string dir, long afterStep);

    /// <summary>The progress messages from <paramref name="from"/> on, and a task that completes when there are more.</summary>
    (IReadOnlyList<Progress> Items, Task More) Read(int from);
}
