using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Recycling;

/// <summary>A recycled successor: the model with its weights, where each tensor came from, and the selections.</summary>
public sealed class RecycleResult : IDisposable
{
    public required ModelSpec Successor { get; init; }
    public required nn.Module<Tensor, Tensor> Model { get; init; }
    public required IReadOnlyDictionary<string, Provenance> Provenance { get; init; }
    public required IReadOnlyList<LayerExperts> Layers { get; init; }
    /// <summary>Target-checkpoint keys the successor did not take (e.g. the dense MLPs of MoE blocks, the head).</summary>
    public required IReadOnlyList<string> UnusedTargetKeys { get; init; }

    public void Dispose()
    {
        foreach (var l in Layers) l.Dispose();
        Model.Dispose();
    }
}

/// <summary>
/// Checkpoint recycling (spec §5, pseudo-code §5.10): experts sampled from a larger dense
/// predecessor's MLPs (by activation importance by default), the rest stitched from the
/// target-width dense checkpoint, fresh router parameters. Pure tensor work: inputs are state
/// dicts with timm names (see DenseCheckpoint) and the predecessor's activation statistics.
/// </summary>
public static class CheckpointRecycler
{
    public static RecycleResult Recycle(ModelSpec successor, ModelSpec predecessor, IReadOnlyDictionary<string, Tensor> pred,
                                        IReadOnlyDictionary<string, Tensor>? target, ActivationStats? stats, RecycleOptions options)
    {
        Validate(successor, predecessor, target, stats, options);
        var generator = new Generator((ulong)options.Seed);
        var layers = new List<LayerExperts>();
        nn.Module<Tensor, Tensor> model;
        using (Layers.Init.DeferredExperts()) model = CreateSeeded(successor, options.Seed);   // every expert is written below
        try
        {
            var state = model.state_dict();
            foreach (var (prefix, dim, moe) in successor.MoeLayers())
                layers.Add(RecycleLayer(prefix, dim, moe, successor, pred, target, stats, options, generator, state));

            var provenance = Stitch(model, successor, predecessor, layers, pred, target, stats, options, generator);
            var used = provenance.Where(p => p.Value == Provenance.Target).Select(p => p.Key).ToHashSet();
            return new RecycleResult
            {
                Successor = successor, Model = model, Provenance = provenance, Layers = layers,
                UnusedTargetKeys = target?.Keys.Where(k => !used.Contains(k)).Order().ToList() ?? [],
            };
        }
        catch
        {
            foreach (var l in layers) l.Dispose();
            model.Dispose();
            throw;
        }
    }

    static LayerExperts RecycleLayer(string prefix, int dim, MoeConfig moe, ModelSpec successor, IReadOnlyDictionary<string, Tensor> pred,
                                     IReadOnlyDictionary<string, Tensor>? target, ActivationStats? stats, RecycleOptions options, Generator gen,
                                     IReadOnlyDictionary<string, Tensor> into)
    {
        if (options.Method == RecycleMethod.SparseUpcycling) return ExpertExtraction.CopiesOfDense(prefix, moe, target!, into);

        var w1 = Require(pred, $"{prefix}.fc1.weight", "predecessor");
        int hs = (int)w1.shape[0], ds = (int)w1.shape[1], hc = moe.CoreHidden(dim), e = moe.TotalExperts;
        string hiddenSite = $"{prefix}.act", channelSite = NormSite(successor, prefix);
        var (hidden, channels) = Select(options, stats, hiddenSite, channelSite, hs, ds, hc, dim, e, gen);
        var layer = ExpertExtraction.FromPredecessor(prefix, moe, dim, pred, hidden, channels, into);
        if (stats is null) return layer;
        using var scope = NewDisposeScope();
        return new LayerExperts
        {
            Layer = layer.Layer, Keys = layer.Keys, Hidden = layer.Hidden, UniversalKeep = layer.UniversalKeep, Channels = layer.Channels,
            HiddenMass = ExpertExtraction.MassCovered(stats[hiddenSite].Importance(options.Statistic), hidden),
            ChannelMass = ExpertExtraction.MassCovered(stats[channelSite].Importance(options.Statistic), channels),
        };
    }

    /// <summary>Which predecessor hidden units [E, Hc] and channels [E, Dt] each expert inherits (spec §5.3).</summary>
    static (Tensor Hidden, Tensor Channels) Select(RecycleOptions options, ActivationStats? stats, string hiddenSite, string channelSite,
                                                   int hs, int ds, int hc, int dim, int e, Generator gen)
    {
        using var scope = NewDisposeScope();
        Tensor hidden, channels;
        switch (options.Method)
        {
            case RecycleMethod.Random:
                hidden = IndexSampler.Random(hs, e, hc, gen);
                channels = IndexSampler.Random(ds, e, dim, gen);
                break;
            case RecycleMethod.Uniform:
                hidden = IndexSampler.Uniform(hs, e, hc);
                channels = IndexSampler.Uniform(ds, e, dim);
                break;
            case RecycleMethod.Graph:
                var coact = stats![hiddenSite].CoActivation() ?? throw new ArgumentException(
                    $"the graph method needs co-activation statistics for {hiddenSite}: profile with co-activation on");
                var part = options.Partitioner!(coact, options.GraphParts, options.Seed);
                hidden = IndexSampler.Graph(part, coact, e, hc, gen);
                channels = IndexSampler.Importance(stats[channelSite].Importance(ImportanceStat.L2), e, dim, gen);
                break;
            default:
                hidden = IndexSampler.Importance(stats![hiddenSite].Importance(options.Statistic), e, hc, gen);
                channels = IndexSampler.Importance(stats[channelSite].Importance(options.Statistic), e, dim, gen);
                break;
        }
        return (hidden.MoveToOuterDisposeScope(), channels.MoveToOuterDisposeScope());
    }

    static Dictionary<string, Provenance> Stitch(nn.Module model, ModelSpec successor, ModelSpec predecessor, List<LayerExperts> layers,
        IReadOnlyDictionary<string, Tensor> pred, IReadOnlyDictionary<string, Tensor>? target, ActivationStats? stats,
        RecycleOptions options, Generator gen)
    {
        var recycled = layers.SelectMany(l => l.Keys).ToHashSet();
        DenseStitching.VitSelection? selection = options.DenseFrom == DenseSource.Predecessor
            ? DenseStitching.SelectVit(successor.Vit!, predecessor.Vit!, stats!, options.Statistic, gen) : null;
        var provenance = new Dictionary<string, Provenance>();
        using var _ = no_grad();
        foreach (var (key, tensor) in model.state_dict())
        {
            using var scope = NewDisposeScope();                              // predecessor selections are temporaries
            Tensor? source; Provenance from;
            if (recycled.Contains(key)) { provenance[key] = Provenance.Recycled; continue; }
            if (selection is not null)
            {
                source = DenseStitching.FromPredecessor(key, pred, selection, predecessor.Vit!.Dim);
                from = Provenance.Predecessor;
            }
            else
            {
                source = DenseStitching.FromTarget(key, tensor, target!);
                from = Provenance.Target;
            }
            if (source is null)
            {
                if (key.Contains("experts.", StringComparison.Ordinal))   // built uninitialised: must be recycled
                    throw new InvalidOperationException($"expert tensor '{key}' was not recycled");
                provenance[key] = Provenance.Fresh;
                continue;
            }
            if (!source.shape.SequenceEqual(tensor.shape))
                throw new InvalidOperationException($"recycled '{key}' has shape [{string.Join(", ", source.shape)}], the successor [{string.Join(", ", tensor.shape)}]");
            tensor.copy_(source);
            provenance[key] = from;
        }
        if (selection is not null)
            foreach (var t in selection.Hidden.Concat(selection.Attention).Append(selection.Channels)) t.Dispose();
        return provenance;
    }

    /// <summary>
    /// Builds the successor with its fresh parameters (router φ, head, anything not recycled) drawn
    /// from <paramref name="seed"/>: module initialisers use torch's global generator, so it is seeded
    /// here and its previous state restored afterwards — the caller's random stream is not disturbed.
    /// The global generator is process-wide: two recycles on two threads at once would interleave.
    /// </summary>
    static nn.Module<Tensor, Tensor> CreateSeeded(ModelSpec successor, long seed)
    {
        using var saved = torch.random.get_rng_state();
        torch.random.manual_seed(seed);
        try
        {
            return ModelRegistry.Create(successor);
        }
        finally
        {
            torch.random.set_rng_state(saved);
        }
    }

    /// <summary>The hook site whose statistics rank a block's channels: norm2 (ViT) or the block norm (ConvNeXt).</summary>
    static string NormSite(ModelSpec spec, string mlpPrefix) =>
        mlpPrefix[..^".mlp".Length] + (spec.Vit is not null ? ".norm2" : ".norm");

    static Tensor Require(IReadOnlyDictionary<string, Tensor> dict, string key, string what) =>
        dict.TryGetValue(key, out var t) ? t : throw new ArgumentException($"{what} checkpoint has no '{key}'");

    static void Validate(ModelSpec successor, ModelSpec predecessor, IReadOnlyDictionary<string, Tensor>? target,
                         ActivationStats? stats, RecycleOptions options)
    {
        var layers = successor.MoeLayers().ToList();
        // A dense successor is allowed with paper-literal selection only: that is weight selection
        // (a smaller dense model initialised from a larger one, the "dense from predecessor" baseline).
        if (layers.Count == 0 && options.DenseFrom != DenseSource.Predecessor)
            throw new ArgumentException($"successor '{successor.Variant}' has no MoE layers to recycle into (a dense successor needs --dense-from predecessor)");
        if ((successor.Vit is null) != (predecessor.Vit is null))
            throw new ArgumentException($"successor '{successor.Variant}' and predecessor '{predecessor.Variant}' are different architectures");
        if (predecessor.MoeLayers().Any()) throw new ArgumentException($"predecessor '{predecessor.Variant}' must be a dense model");
        if (target is null && (options.DenseFrom == DenseSource.Target || options.Method == RecycleMethod.SparseUpcycling))
            throw new ArgumentException("a target-width dense checkpoint is required (--target), unless --dense-from predecessor");
        if (options.DenseFrom == DenseSource.Predecessor && successor.Vit is null)
            throw new ArgumentException("--dense-from predecessor (spec §5.7) is implemented for ViT only");
        if (options.NeedsStatistics && stats is null)
            throw new ArgumentException($"method {RecycleOptions.Name(options.Method)} needs activation statistics (profile images or --stats)");
        if (stats is not null && stats.ModelVariant != predecessor.Variant)
            throw new ArgumentException($"activation statistics are of '{stats.ModelVariant}', the predecessor is '{predecessor.Variant}'");
        if (options.Method == RecycleMethod.Graph && options.Partitioner is null)
            throw new ArgumentException("the graph method needs a partitioner");
        if (successor.Vit is { } sv && predecessor.Vit is { } pv && sv.Depth != pv.Depth)
            throw new ArgumentException($"successor depth {sv.Depth} ≠ predecessor depth {pv.Depth}: layers map one to one");
        if (successor.ConvNeXt is { } sc && predecessor.ConvNeXt is { } pc && !sc.Depths.SequenceEqual(pc.Depths))
            throw new ArgumentException($"successor depths ({string.Join(',', sc.Depths)}) ≠ predecessor depths ({string.Join(',', pc.Depths)})");
        foreach (var (prefix, dim, moe) in layers)
        {
            if (options.Method == RecycleMethod.SparseUpcycling)
            {
                if (moe.UniversalExperts != 0)
                    throw new ArgumentException($"universal_experts: sparse upcycling copies the dense MLP into core experts only; '{successor.Variant}' has {moe.UniversalExperts} universal experts (set universal_experts: 0, or use a *_upcycle variant)");
                if (target is not null && target.TryGetValue($"{prefix}.fc1.weight", out var dense) && dense.shape[0] != moe.CoreHidden(dim))
                    throw new ArgumentException($"core_hidden_ratio: sparse upcycling copies the target's MLP (hidden {dense.shape[0]}) into every core expert; '{successor.Variant}' has core experts of hidden {moe.CoreHidden(dim)} at {prefix} (core_hidden_ratio {moe.CoreHiddenRatio})");
                continue;
            }
            var (hs, ds) = predecessor.Vit is { } v ? (v.MlpHidden, v.Dim) : (4 * DimAt(predecessor.ConvNeXt!, prefix), DimAt(predecessor.ConvNeXt!, prefix));
            if (ds < dim)
                throw new ArgumentException($"{prefix}: the predecessor '{predecessor.Variant}' (width {ds}) is narrower than the successor (width {dim})");
            // Spec §5.3: an expert's hidden units are a subset of the predecessor's MLP units; universal experts keep a subset of those (§5.5).
            if (moe.CoreHidden(dim) > hs)
                throw new ArgumentException($"core_hidden_ratio: core experts of hidden {moe.CoreHidden(dim)} (ratio {moe.CoreHiddenRatio} × width {dim}) at {prefix} exceed the predecessor '{predecessor.Variant}''s MLP width {hs}: recycling samples an expert's units from it");
            if (moe.UniversalExperts > 0 && moe.UniversalHidden(dim) > moe.CoreHidden(dim))
                throw new ArgumentException($"universal_hidden_ratio: universal experts of hidden {moe.UniversalHidden(dim)} at {prefix} exceed the core experts' hidden {moe.CoreHidden(dim)}: recycling keeps a subset of a sampled core set (spec §5.5)");
        }
    }

    static int DimAt(ConvNeXtConfig c, string prefix) => c.Dims[int.Parse(prefix.Split('.')[1])];
}
