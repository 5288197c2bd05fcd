using System.Globalization;
using TorchSharp;
using Jetpack.Model.Models;

namespace Jetpack.Model.Registry;

/// <summary>
/// Bounds of a model request, checked on the fields before anything is built, so that a hostile
/// spec (specs arrive over the network) cannot ask for terabytes: each count and size is bounded,
/// then the expert parameters are counted analytically against <see cref="MaxParameters"/>.
/// </summary>
public static class ModelLimits
{
    /// <summary>Core or universal experts per MoE layer (issue 19's largest grid point is 1,176 in all).</summary>
    public const int MaxExperts = 65_536;
    public const int MaxSlotsPerExpert = 64;
    /// <summary>Slots of one layer (experts × slots): the routing logits are [b, n, slots].</summary>
    public const int MaxSlots = 1 << 17;
    public const double MaxHiddenRatio = 64;
    public const int MaxClasses = 1_000_000;
    public const int MaxImageSize = 4096;
    /// <summary>Longest layer list (and range) a request may write.</summary>
    public const int MaxDepth = 1024;
    /// <summary>Parameters of one model: 20 billion (80 GB in fp32, 240 GB with AdamW's moments).</summary>
    public const long MaxParameters = 20_000_000_000;
}

public static partial class ModelRegistry
{
    /// <summary>
    /// The model a request asks for (see <see cref="ModelRequest"/>): the base variant with the
    /// request's fields applied. Errors are <see cref="ModelRequestException"/>s naming the field
    /// (bare, e.g. <c>core_experts</c>; empty for the model as a whole).
    /// </summary>
    /// <param name="datasetClasses">the run's class count, for <c>num_classes: auto</c>; null when there is no dataset</param>
    public static ModelSpec Resolve(ModelRequest request, int? datasetClasses = null)
    {
        static void Check(bool ok, string field, string problem) { if (!ok) throw new ModelRequestException(field, problem); }

        Check(!request.IsFile, "", $"'{request.Base}' is a model file: it is read by the command or spec reader, not here");
        Check(!string.IsNullOrEmpty(request.Base), "base", "is required (a registered variant, see `jetpack models`)");
        Check(Names.Contains(request.Base), "base", $"unknown model variant '{request.Base}' (known: {string.Join(", ", Names)})");
        return request.IsName ? Get(request.Base) : Apply(Get(request.Base), request, datasetClasses);
    }

    /// <summary>
    /// <paramref name="baseSpec"/> with the request's fields applied (the request's <c>base</c> only names it in
    /// the variant): bounds first, then the configs' own checks, then the expert parameter count.
    /// </summary>
    public static ModelSpec Apply(ModelSpec baseSpec, ModelRequest request, int? datasetClasses = null)
    {
        static void Check(bool ok, string field, string problem) { if (!ok) throw new ModelRequestException(field, problem); }
        static string Inv(double x) => x.ToString(CultureInfo.InvariantCulture);
        var spec = baseSpec;
        var r = request;

        // Field bounds first: nothing below is sized by an unchecked number.
        CheckBounds(r, "");
        Check(r.ImageSize is null or (>= 1 and <= ModelLimits.MaxImageSize), "image_size", $"must be in 1..{ModelLimits.MaxImageSize}, got {r.ImageSize}");
        if (r.Stages is { } stages)
            foreach (var (stage, fields) in stages)
            {
                Check(stage is >= 0 and <= 3, "stages", $"a ConvNeXt has stages 0..3, got {stage}");
                if (fields is not null) CheckBounds(fields, $"stages.{stage}.");
            }
        int? classes = null;
        if (r.NumClasses is { } nc)
        {
            if (r.AutoClasses)
            {
                Check(datasetClasses is not null, "num_classes", "'auto' takes the run's dataset's classes: there is no dataset here (give a number)");
                classes = datasetClasses;
            }
            else
            {
                Check(int.TryParse(nc, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n is >= 1 and <= ModelLimits.MaxClasses,
                      "num_classes", $"must be 'auto' or an integer in 1..{N(ModelLimits.MaxClasses)}, got '{nc}'");
                classes = int.Parse(nc, CultureInfo.InvariantCulture);
            }
        }

        if (spec.ConvNeXt is { } c)
        {
            Check(!r.AnyExpertField, FirstExpertField(r), $"'{r.Base}' is a ConvNeXt: its experts are set per stage, e.g. stages: {{2: {{core_experts: 196, moe_layers: [3..8]}}}}");
            Check(r.ImageSize is null || r.ImageSize % 32 == 0, "image_size", $"must be a multiple of 32 for a ConvNeXt, got {r.ImageSize}");
            var stageMoe = c.StageMoe.ToArray();
            foreach (var (stage, fields) in r.Stages ?? [])
                stageMoe[stage] = fields is null ? null : WithExperts(stageMoe[stage], fields, c.Dims[stage], c.Depths[stage], $"stages.{stage}.", $"stage {stage} of '{r.Base}'");
            spec = spec with { ConvNeXt = c with { NumClasses = classes ?? c.NumClasses, ImageSize = r.ImageSize ?? c.ImageSize, StageMoe = stageMoe } };
        }
        else
        {
            var v = spec.Vit!;
            Check(r.Stages is null, "stages", $"sets the experts of ConvNeXt stages; '{r.Base}' is a ViT (give the expert fields at the top level)");
            Check(r.ImageSize is null || r.ImageSize % v.PatchSize == 0, "image_size", $"must be a multiple of the patch size {v.PatchSize}, got {r.ImageSize}");
            var moe = r.AnyExpertField ? WithExperts(v.Moe, r, v.Dim, v.Depth, "", $"'{r.Base}'") : v.Moe;
            spec = spec with { Vit = v with { Moe = moe, NumClasses = classes ?? v.NumClasses, ImageSize = r.ImageSize ?? v.ImageSize } };
        }

        long experts = ExpertParameters(spec);
        Check(experts <= ModelLimits.MaxParameters, "", $"asks for {N(experts)} expert parameters ({Inv(Math.Round(experts * 4 / 1e9))} GB in fp32), above the limit of {N(ModelLimits.MaxParameters)}");
        try
        {
            spec.Vit?.Validate();
            spec.ConvNeXt?.Validate();
        }
        catch (ArgumentException e) { throw new ModelRequestException("", e.Message); }
        return spec with { Variant = VariantName(request, classes) };
    }

    /// <summary>The bounds of an expert field set, before anything is sized by it; <paramref name="prefix"/> names where it sits (e.g. "stages.2.").</summary>
    static void CheckBounds(ExpertFields r, string prefix)
    {
        void Check(bool ok, string field, string problem) { if (!ok) throw new ModelRequestException(prefix + field, problem); }
        static string Inv(double x) => x.ToString(CultureInfo.InvariantCulture);
        Check(r.CoreExperts is null or (>= 0 and <= ModelLimits.MaxExperts), "core_experts", $"must be in 0..{N(ModelLimits.MaxExperts)}, got {r.CoreExperts}");
        Check(r.UniversalExperts is null or (>= 0 and <= ModelLimits.MaxExperts), "universal_experts", $"must be in 0..{N(ModelLimits.MaxExperts)}, got {r.UniversalExperts}");
        Check(r.SlotsPerExpert is null or (>= 1 and <= ModelLimits.MaxSlotsPerExpert), "slots_per_expert", $"must be in 1..{ModelLimits.MaxSlotsPerExpert}, got {r.SlotsPerExpert}");
        foreach (var (field, ratio) in new[] { ("core_hidden_ratio", r.CoreHiddenRatio), ("universal_hidden_ratio", r.UniversalHiddenRatio) })
            Check(ratio is null || (double.IsFinite(ratio.Value) && ratio > 0 && ratio <= ModelLimits.MaxHiddenRatio), field,
                  $"must be in (0, {Inv(ModelLimits.MaxHiddenRatio)}], got {(ratio is { } x ? Inv(x) : "")}");
        Check(r.MoeLayers is null || r.MoeLayers.Length <= ModelLimits.MaxDepth, "moe_layers", $"lists more than {ModelLimits.MaxDepth} layers");
    }

    /// <summary>
    /// <paramref name="moe"/> (null: a dense layer set) with the request's expert fields applied, for layers of width
    /// <paramref name="dim"/> among <paramref name="depth"/> blocks; <paramref name="what"/> names the blocks in errors.
    /// </summary>
    static MoeConfig WithExperts(MoeConfig? moe, ExpertFields r, int dim, int depth, string prefix, string what)
    {
        void Check(bool ok, string field, string problem) { if (!ok) throw new ModelRequestException(prefix + field, problem); }
        if (moe is null)
        {
            Check(r.CoreExperts is not null || r.UniversalExperts is not null, "core_experts", $"{what} is dense: give core_experts and/or universal_experts to make it an MoE");
            Check(r.MoeLayers is not null, "moe_layers", $"{what} is dense: give the blocks that become MoE layers (0-based, e.g. [6..11])");
            moe = new MoeConfig { Kind = r.Kind ?? MoeKind.Sphero };
        }
        var kind = r.Kind ?? moe.Kind;
        moe = moe with
        {
            Kind = kind,
            CoreExperts = r.CoreExperts ?? moe.CoreExperts,
            // Soft MoE has one expert size: switching a dual-path base to soft drops the universal experts unless they are given.
            UniversalExperts = r.UniversalExperts ?? (kind == MoeKind.Soft && moe.Kind != MoeKind.Soft ? 0 : moe.UniversalExperts),
            SlotsPerExpert = r.SlotsPerExpert ?? moe.SlotsPerExpert,
            Layers = r.MoeLayers ?? moe.Layers,
            CoreHiddenRatio = r.CoreHiddenRatio ?? moe.CoreHiddenRatio,
            UniversalHiddenRatio = r.UniversalHiddenRatio ?? moe.UniversalHiddenRatio,
        };
        Check(moe.TotalExperts >= 1, r.CoreExperts is not null ? "core_experts" : "universal_experts", "leaves no expert: core_experts + universal_experts must be ≥ 1");
        Check(kind != MoeKind.Soft || moe.UniversalExperts == 0, "universal_experts", $"Soft MoE has one expert size: must be 0, got {moe.UniversalExperts}");
        Check((long)moe.TotalExperts * moe.SlotsPerExpert <= ModelLimits.MaxSlots, "slots_per_expert",
              $"{N(moe.TotalExperts)} experts × {moe.SlotsPerExpert} slots = {N((long)moe.TotalExperts * moe.SlotsPerExpert)} slots per layer, above the limit of {N(ModelLimits.MaxSlots)}");
        Check(moe.Layers.Length >= 1, "moe_layers", "must name at least one block");
        foreach (var l in moe.Layers)
            Check(l >= 0 && l < depth, "moe_layers", $"block {l} is outside blocks 0..{depth - 1} of {what} (0-based)");
        Check(moe.Layers.Distinct().Count() == moe.Layers.Length, "moe_layers", $"repeats a block: [{string.Join(", ", moe.Layers)}]");
        Check(moe.CoreExperts == 0 || moe.CoreHidden(dim) >= 1, "core_hidden_ratio", $"gives core experts no hidden unit at width {dim}");
        Check(moe.UniversalExperts == 0 || moe.UniversalHidden(dim) >= 1, "universal_hidden_ratio", $"gives universal experts no hidden unit at width {dim}");
        return moe;
    }

    static string N(long x) => x.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>Parameters of every expert bank and router of a spec, counted from the config (nothing built).</summary>
    public static long ExpertParameters(ModelSpec spec)
    {
        long total = 0;
        foreach (var (_, dim, m) in spec.MoeLayers())
        {
            long hc = m.CoreHidden(dim), hu = m.UniversalHidden(dim);
            total += m.CoreExperts * (2 * dim * hc + hc + dim) + m.UniversalExperts * (2 * dim * hu + hu + dim)
                     + (long)m.TotalExperts * m.SlotsPerExpert * dim;
        }
        return total;
    }

    /// <summary>Parameters of a spec's model, built on the meta device (shapes only, no memory).</summary>
    public static long ParameterCount(ModelSpec spec)
    {
        using var model = Create(spec, torch.META);
        return ParameterCount(model);
    }

    /// <summary>The resolved model in one line: variant, architecture, experts and parameters (what commands print).</summary>
    public static string Summary(ModelSpec spec, long? parameters = null)
    {
        long p = parameters ?? ParameterCount(spec);
        string arch = spec.Vit is { } v ? $"ViT width {v.Dim}, depth {v.Depth}, {v.ImageSize}² input, {v.NumClasses} classes"
                    : $"ConvNeXt widths {string.Join('/', spec.ConvNeXt!.Dims)}, {spec.ConvNeXt.ImageSize}² input, {spec.ConvNeXt.NumClasses} classes";
        var moe = spec.MoeLayers().GroupBy(l => l.Moe).Select(g =>
            $"{g.Key.Kind.ToString().ToLowerInvariant()} MoE in blocks [{string.Join(", ", g.Select(l => l.Prefix.Split('.')[^2]))}]: " +
            $"{g.Key.CoreExperts} core (hidden {g.Key.CoreHidden(g.First().Dim)}) + {g.Key.UniversalExperts} universal (hidden {g.Key.UniversalHidden(g.First().Dim)}) experts × {g.Key.SlotsPerExpert} slot(s)");
        return $"{spec.Variant}: {arch}; {string.Join("; ", moe.DefaultIfEmpty("dense"))}; {p / 1e6:F1}M parameters";
    }

    static string FirstExpertField(ExpertFields r) =>
        r.CoreExperts is not null ? "core_experts" : r.UniversalExperts is not null ? "universal_experts" : r.SlotsPerExpert is not null ? "slots_per_expert"
        : r.MoeLayers is not null ? "moe_layers" : r.CoreHiddenRatio is not null ? "core_hidden_ratio" : r.UniversalHiddenRatio is not null ? "universal_hidden_ratio" : "kind";

    /// <summary>"v_jetmoe_t{core_experts=392,slots_per_expert=2,moe_layers=6..11}": the base and what the request changed.</summary>
    static string VariantName(ModelRequest r, int? classes)
    {
        var parts = ExpertParts(r, "");
        foreach (var (stage, fields) in (r.Stages ?? []).OrderBy(kv => kv.Key))
            parts.AddRange(fields is null ? [$"stages.{stage}=dense"] : ExpertParts(fields, $"stages.{stage}."));
        if (classes is { } n) parts.Add($"num_classes={n}");
        if (r.ImageSize is { } i) parts.Add($"image_size={i}");
        return $"{r.Base}{{{string.Join(',', parts)}}}";
    }

    static List<string> ExpertParts(ExpertFields r, string prefix)
    {
        static string Inv(double x) => x.ToString(CultureInfo.InvariantCulture);
        var parts = new List<string>();
        if (r.CoreExperts is { } ce) parts.Add($"core_experts={ce}");
        if (r.UniversalExperts is { } ue) parts.Add($"universal_experts={ue}");
        if (r.SlotsPerExpert is { } s) parts.Add($"slots_per_expert={s}");
        if (r.MoeLayers is { } ls) parts.Add($"moe_layers={Layers(ls)}");
        if (r.CoreHiddenRatio is { } ch) parts.Add($"core_hidden_ratio={Inv(ch)}");
        if (r.UniversalHiddenRatio is { } uh) parts.Add($"universal_hidden_ratio={Inv(uh)}");
        if (r.Kind is { } k) parts.Add($"kind={k.ToString().ToLowerInvariant()}");
        return parts.Select(p => prefix + p).ToList();
    }

    /// <summary>[6, 7, 8, 9, 10, 11] → "6..11"; other lists joined by '+'.</summary>
    static string Layers(int[] layers)
    {
        var sorted = layers.Order().ToArray();
        bool contiguous = sorted.Length > 1 && sorted[^1] - sorted[0] == sorted.Length - 1;
        return contiguous ? $"{sorted[0]}..{sorted[^1]}" : string.Join('+', sorted);
    }
}
