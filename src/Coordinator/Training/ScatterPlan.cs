namespace Jetpack.Coordinator.Training;

/// <summary>
/// What the scatter of one attempt decided, for its training (<see cref="ITrainingDriver.ScatterAsync"/>
/// returns it; the grain hands it to <see cref="ITrainingDriver.TrainAsync"/>): the run id the ranks
/// joined, the process that joined on each rank (a rank answering from another process was restarted),
/// the expert-parallel group size, the model spec the ranks were given, and where training resumes.
/// </summary>
/// <param name="ModelSpecJson">the resolved model spec (deterministic switch applied), as StartJob carries it</param>
/// <param name="ResumeJson">the <see cref="Jetpack.Application.Runs.ScatteredResume"/> of a recovery (JSON), or null: a first attempt starts from the recycled checkpoint</param>
[GenerateSerializer, Immutable]
public sealed record ScatterPlan(
    [property: Id(0)] string RunId,
    [property: Id(1)] int[] Pids,
    [property: Id(2)] int ExpertParallel,
    [property: Id(3)] string ModelSpecJson,
    [property: Id(4)] string? ResumeJson);
