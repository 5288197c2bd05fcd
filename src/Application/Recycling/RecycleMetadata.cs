using Jetpack.Model.Recycling;

namespace Jetpack.Application.Recycling;

/// <summary>
/// What a recycled checkpoint records of its making (in safetensors <c>__metadata__</c>, beside
/// the model identity): enough to redo it — the recipe and each source as <c>variant:sha256</c>.
/// </summary>
public static class RecycleMetadata
{
    public const string Method = "recycle.method";
    public const string Seed = "recycle.seed";
    public const string DenseFrom = "recycle.dense_from";
    public const string Predecessor = "recycle.predecessor";
    /// <summary>Only when a target checkpoint was given.</summary>
    public const string Target = "recycle.target";

    public static IReadOnlyList<string> Keys { get; } = [Method, Seed, DenseFrom, Predecessor, Target];

    public static Dictionary<string, string> For(RecycleOptions options, RecycleSources sources)
    {
        var metadata = new Dictionary<string, string>
        {
            [Method] = RecycleOptions.Name(options.Method), [Seed] = options.Seed.ToString(),
            [DenseFrom] = DenseFromName(options.DenseFrom),
            [Predecessor] = $"{sources.PredecessorFile.Variant}:{sources.PredecessorFile.Sha256}",
        };
        if (sources.TargetFile is { } t) metadata[Target] = $"{t.Variant}:{t.Sha256}";
        return metadata;
    }

    public static string DenseFromName(DenseSource source) => source.ToString().ToLowerInvariant();
}
