namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>
/// One evaluation of a job's model on the test split (rank 0's Progress with <c>evaluated</c>: the
/// periodic ones on <c>eval_limit</c> images, the last step's on the whole split).
/// </summary>
[GenerateSerializer, Immutable]
public sealed record Evaluation(
    [property: Id(0)] long Step,
    [property: Id(1)] double Loss,
    [property: Id(2)] double Top1,
    [property: Id(3)] double Top5,
    [property: Id(4)] int Images);
