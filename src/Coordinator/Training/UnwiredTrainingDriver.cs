namespace Jetpack.Coordinator.Training;

/// <summary>
/// A driver that refuses: it fails the job at the Scattering phase with a message that says so
/// (not a silent success). The coordinator registers <see cref="GrpcTrainingDriver"/>; this one
/// remains for hosts that must not reach workers.
/// </summary>
public sealed class UnwiredTrainingDriver : ITrainingDriver
{
    public const string Message = "scatter/training is not wired in this build: the WorkerControl training driver of the expert-parallel engine is not registered (ITrainingDriver)";

    public Task ScatterAsync(TrainingRun run, CancellationToken cancel) => throw new NotSupportedException(Message);

    public Task TrainAsync(TrainingRun run, IProgress<Grains.Contracts.TrainingProgress> progress, CancellationToken cancel) => throw new NotSupportedException(Message);

    public Task<string> FinishAsync(TrainingRun run, Grains.Contracts.Evaluation? lastEval, CancellationToken cancel) => throw new NotSupportedException(Message);
}
