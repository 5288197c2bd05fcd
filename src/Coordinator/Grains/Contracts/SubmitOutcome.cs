namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>Why a submission was refused.</summary>
[GenerateSerializer]
public enum SubmitRefusal
{
    None = 0,
    /// <summary>The spec does not validate; the message names the field.</summary>
    InvalidSpec = 1,
    /// <summary>A different spec was already submitted under this id.</summary>
    Conflict = 2,
}

/// <summary>The answer to a submission: the job, or the refusal and its reason.</summary>
[GenerateSerializer, Immutable]
public sealed record SubmitOutcome(
    [property: Id(0)] JobSnapshot? Job,
    [property: Id(1)] SubmitRefusal Refusal,
    [property: Id(2)] string Message);
