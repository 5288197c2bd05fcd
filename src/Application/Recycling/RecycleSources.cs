using Jetpack.Model.Checkpoints;
using Jetpack.Model.Recycling;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Application.Recycling;

/// <summary>
/// The dense checkpoints a recycling reads, loaded and hashed once: the study recycles several
/// successors from one pair, and every checkpoint and report names its sources by
/// <c>variant:sha256</c> (ViT-S is ~90 MB: hashing costs about as long as loading).
/// </summary>
public sealed class RecycleSources : IDisposable
{
    public required DenseCheckpoint Predecessor { get; init; }
    public required SourceFile PredecessorFile { get; init; }
    public DenseCheckpoint? Target { get; init; }
    public SourceFile? TargetFile { get; init; }

    /// <summary>Head tensors of either source, left out of the successor.</summary>
    public IReadOnlyList<string> Ignored => [.. Predecessor.Ignored, .. Target?.Ignored ?? []];

    public static RecycleSources Load(string from, ModelSpec fromSpec, string? target, ModelSpec? targetSpec)
    {
        var pred = DenseCheckpoint.Load(from, fromSpec);
        DenseCheckpoint? dense = null;
        try
        {
            dense = target is null ? null
                : DenseCheckpoint.Load(target, targetSpec ?? throw new ArgumentException($"{target}: no target variant given"));
            return new RecycleSources
            {
                Predecessor = pred, PredecessorFile = new SourceFile(pred.Path, fromSpec.Variant, Sha256Hex.OfFile(pred.Path)),
                Target = dense, TargetFile = dense is null ? null : new SourceFile(dense.Path, dense.Spec.Variant, Sha256Hex.OfFile(dense.Path)),
            };
        }
        catch
        {
            pred.Dispose();
            dense?.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Predecessor.Dispose();
        Target?.Dispose();
    }
}
