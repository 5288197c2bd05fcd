namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>
/// A job spec after the edge (JobService) read and validated it: the typed spec in its canonical JSON
/// (<see cref="Jobs.JobSpecReader.ToJson"/>, the spec dialect), which the grain deserializes once and
/// persists as is. Nothing after the edge validates it again.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record JobSubmission(
    [property: Id(0)] string SpecJson,
    [property: Id(1)] string Source)
{
    /// <summary>SHA-256 of the canonical spec: the same spec under the same id is the same job (idempotent
    /// submit), however it was written (YAML or JSON, field order, defaults spelled out or not).</summary>
    public string Hash => Jetpack.Model.Checkpoints.Sha256Hex.OfText("json\n" + SpecJson);
}
