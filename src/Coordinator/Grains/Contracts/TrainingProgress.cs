using Jetpack.Model.Training;
namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>One progress report of the Training phase (from rank 0, through the training driver);
/// <paramref name="Eval"/> when the step ended with an evaluation.</summary>
[GenerateSerializer, Immutable]
public sealed record TrainingProgress(
    [property: Id(0)] long Step,
    [property: Id(1)] long TotalSteps,
    [property: Id(2)] double Loss,
    [property: Id(3)] double ImagesPerSecond,
    [property: Id(4)] EvalResult? Eval = null);
