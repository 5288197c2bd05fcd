namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>
/// A job spec as the user wrote it. The grain stores the text (not a parsed object) so that what
/// is persisted is exactly what was validated, and re-validation after a restart reads the same.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record JobSubmission(
    [property: Id(0)] string SpecText,
    [property: Id(1)] string Format,
    [property: Id(2)] string Source)
{
    /// <summary>SHA-256 of format + text: the same spec under the same id is the same job (idempotent submit).</summary>
    public string Hash => Jetpack.Model.Checkpoints.Sha256Hex.OfText(Format + "\n" + SpecText);
}
