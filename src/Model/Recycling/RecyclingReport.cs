using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;

namespace Jetpack.Model.Recycling;

/// <summary>One expert's share of its layer's importance mass (spec §5.3: what its selection covers).</summary>
public sealed record ExpertCoverage(int Expert, string Kind, double? HiddenMass, double? ChannelMass);

public sealed record MassSummary(double Mean, double Min, double Max)
{
    public static MassSummary? Of(double[]? xs) => xs is null || xs.Length == 0 ? null : new(xs.Average(), xs.Min(), xs.Max());
}

public sealed record LayerCoverage(string Layer, int CoreExperts, int UniversalExperts, int HiddenPerExpert, int ChannelsPerExpert,
                                   MassSummary? HiddenMass, MassSummary? ChannelMass, IReadOnlyList<ExpertCoverage> Experts);

public sealed record SourceFile(string Path, string Variant, string Sha256);

/// <summary>
/// What recycling did, for people and for cross-checks: per layer and expert the importance mass
/// its selection covers, where every tensor came from, unused and ignored keys, and timings
/// (measured by the caller: this library has no clocks).
/// </summary>
public sealed record RecyclingReport
{
    public required string Successor { get; init; }
    public required string Method { get; init; }
    public required long Seed { get; init; }
    public required string DenseFrom { get; init; }
    public required SourceFile Predecessor { get; init; }
    public SourceFile? Target { get; init; }
    public string? Statistics { get; init; }
    public long? ProfiledImages { get; init; }
    public required IReadOnlyList<LayerCoverage> Layers { get; init; }
    public required IReadOnlyDictionary<string, int> ProvenanceCounts { get; init; }
    public required IReadOnlyList<string> FreshKeys { get; init; }
    public required IReadOnlyList<string> UnusedTargetKeys { get; init; }
    public required IReadOnlyList<string> IgnoredKeys { get; init; }
    public string? IndicesFile { get; init; }
    public IReadOnlyDictionary<string, double> TimingsSeconds { get; init; } = new Dictionary<string, double>();

    public static IReadOnlyList<LayerCoverage> Coverage(RecycleResult r) => r.Layers.Select(l =>
    {
        var moe = r.Successor.MoeLayers().Single(m => m.Prefix == l.Layer).Moe;
        int e = (int)l.Hidden.shape[0];
        var experts = Enumerable.Range(0, e).Select(i => new ExpertCoverage(i, i < moe.CoreExperts ? "core" : "universal",
            l.HiddenMass?[i], l.ChannelMass?[i])).ToList();
        return new LayerCoverage(l.Layer, moe.CoreExperts, e - moe.CoreExperts, (int)l.Hidden.shape[1], (int)l.Channels.shape[1],
                                 MassSummary.Of(l.HiddenMass), MassSummary.Of(l.ChannelMass), experts);
    }).ToList();

    public static IReadOnlyDictionary<string, int> CountProvenance(RecycleResult r) =>
        r.Provenance.GroupBy(p => p.Value.ToString().ToLowerInvariant()).ToDictionary(g => g.Key, g => g.Count());

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public void Save(string path)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(this, Json));
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Writes every layer's index sets (int64): {layer}.hidden [E, Hc], {layer}.channels [E, Dt], {layer}.universal_keep [Hu].</summary>
    public static void ExportIndices(RecycleResult r, string path)
    {
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var l in r.Layers)
        {
            tensors.Add(new($"{l.Layer}.hidden", l.Hidden));
            tensors.Add(new($"{l.Layer}.channels", l.Channels));
            if (l.UniversalKeep is not null) tensors.Add(new($"{l.Layer}.universal_keep", l.UniversalKeep));
        }
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["jetpack.kind"] = "jetpack.recycling_indices", ["successor"] = r.Successor.Variant });
    }
}
