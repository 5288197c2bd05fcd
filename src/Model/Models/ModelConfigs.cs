using System.Text.Json;
using System.Text.Json.Serialization;

namespace Jetpack.Model.Models;

/// <summary>Which MoE layer replaces the dense MLP of a block.</summary>
public enum MoeKind
{
    /// <summary>SpheroMoE (spec §3): cosine routing, two temperatures, entmax combine, dual path.</summary>
    Sphero,
    /// <summary>Soft MoE (spec §4): L2 + scale routing, softmax combine, one expert size.</summary>
    Soft,
}

/// <summary>How SpheroMoE normalises the combine weights over slots (spec §3.2 step 6, §3.6).</summary>
public enum CombineNorm { Entmax15, Softmax }

/// <summary>Expert regularisation (spec §3.6): what the code does, or the paper's per-expert drop.</summary>
public enum ExpertDropMode
{
    /// <summary>Elementwise Dropout(p) inside every expert + per-sample DropPath on the outputs (reference code).</summary>
    Elementwise,
    /// <summary>Paper text: each expert's output is dropped per sample with probability p, scaled by 1/(1−p).</summary>
    PerExpert,
}

/// <summary>
/// The MoE part of a model: which blocks, how many experts of which width, and the regularisers.
/// Hidden widths are <c>ratio × D</c> (core 4D and universal D by default, spec §3.1).
/// </summary>
public sealed record MoeConfig
{
    public MoeKind Kind { get; init; } = MoeKind.Sphero;
    /// <summary>0-based block indices (ViT) or block indices within the stage (ConvNeXt).</summary>
    public int[] Layers { get; init; } = [];
    public int CoreExperts { get; init; }
    public int UniversalExperts { get; init; }
    public int SlotsPerExpert { get; init; } = 1;
    public double CoreHiddenRatio { get; init; } = 4.0;
    public double UniversalHiddenRatio { get; init; } = 1.0;
    /// <summary>Dropout inside experts (spec: 0.4).</summary>
    public double ExpertDropout { get; init; } = 0.4;
    public ExpertDropMode ExpertDrop { get; init; } = ExpertDropMode.Elementwise;
    /// <summary>Max MoE DropPath rate, linear over depth like the block drop path (spec §3.2 step 9).</summary>
    public double MoeDropPathRate { get; init; } = 0.1;
    /// <summary>Routing noise std; null = 1/(core+universal) for SpheroMoE (spec §3.2 step 4), 0 for Soft MoE.</summary>
    public double? NoiseStd { get; init; }
    /// <summary>Spec §3.6 decision: noise is off in eval by default (deterministic evaluation).</summary>
    public bool NoiseInEval { get; init; }
    public CombineNorm Combine { get; init; } = CombineNorm.Entmax15;
    /// <summary>Paper-literal single temperature (τ_d = τ_c, one parameter) instead of two.</summary>
    public bool SingleTemperature { get; init; }
    public double InitialTemperature { get; init; } = 0.5;

    [JsonIgnore] public int TotalExperts => CoreExperts + UniversalExperts;

    public int CoreHidden(int dim) => (int)(CoreHiddenRatio * dim);
    public int UniversalHidden(int dim) => (int)(UniversalHiddenRatio * dim);
    public double EffectiveNoiseStd => NoiseStd ?? (Kind == MoeKind.Sphero ? 1.0 / TotalExperts : 0.0);

    public void Validate(string where, int depth)
    {
        if (CoreExperts < 0 || UniversalExperts < 0 || TotalExperts == 0)
            throw new ArgumentException($"{where}: expert counts must be ≥ 0 with at least one expert (core {CoreExperts}, universal {UniversalExperts})");
        if (Kind == MoeKind.Soft && UniversalExperts != 0)
            throw new ArgumentException($"{where}: Soft MoE has one expert size; universal experts must be 0 (got {UniversalExperts})");
        if (SlotsPerExpert < 1) throw new ArgumentException($"{where}: slots per expert must be ≥ 1 (got {SlotsPerExpert})");
        foreach (var l in Layers)
            if (l < 0 || l >= depth) throw new ArgumentException($"{where}: MoE layer {l} is outside blocks 0..{depth - 1}");
        if (Layers.Distinct().Count() != Layers.Length) throw new ArgumentException($"{where}: MoE layers repeat: [{string.Join(',', Layers)}]");
        if (ExpertDropout is < 0 or >= 1) throw new ArgumentException($"{where}: expert dropout must be in [0, 1) (got {ExpertDropout})");
    }
}

public enum PoolKind { Avg, Token }

/// <summary>A Vision Transformer (timm layout), optionally with MoE layers.</summary>
public sealed record VitConfig
{
    public int ImageSize { get; init; } = 224;
    public int PatchSize { get; init; } = 16;
    public int InChannels { get; init; } = 3;
    public int NumClasses { get; init; } = 1000;
    public int Dim { get; init; } = 192;
    public int Depth { get; init; } = 12;
    public int Heads { get; init; } = 3;
    public double MlpRatio { get; init; } = 4.0;
    public bool QkvBias { get; init; } = true;
    /// <summary>Avg pooling uses fc_norm and no final norm; token pooling the reverse (timm's rule).</summary>
    public PoolKind Pool { get; init; } = PoolKind.Token;
    public double DropPathRate { get; init; }
    public double DropRate { get; init; }
    /// <summary>LayerScale init (ls1/ls2.gamma); null = no LayerScale (spec §2).</summary>
    public double? LayerScaleInit { get; init; }
    public double NormEps { get; init; } = 1e-6;
    public MoeConfig? Moe { get; init; }

    [JsonIgnore] public int GridSize => ImageSize / PatchSize;
    [JsonIgnore] public int NumPatches => GridSize * GridSize;
    [JsonIgnore] public int MlpHidden => (int)(MlpRatio * Dim);

    public void Validate()
    {
        if (ImageSize <= 0 || PatchSize <= 0 || ImageSize % PatchSize != 0)
            throw new ArgumentException($"ViT: image size {ImageSize} must be a positive multiple of patch size {PatchSize}");
        if (Dim <= 0 || Heads <= 0 || Dim % Heads != 0)
            throw new ArgumentException($"ViT: width {Dim} must be divisible by heads {Heads}");
        if (Depth <= 0 || InChannels <= 0 || NumClasses <= 0) throw new ArgumentException("ViT: depth, channels and classes must be positive");
        Moe?.Validate("ViT MoE", Depth);
    }
}

/// <summary>A ConvNeXt (timm layout), optionally with MoE layers per stage.</summary>
public sealed record ConvNeXtConfig
{
    public int InChannels { get; init; } = 3;
    public int NumClasses { get; init; } = 1000;
    public int[] Depths { get; init; } = [3, 3, 9, 3];
    public int[] Dims { get; init; } = [96, 192, 384, 768];
    public double DropPathRate { get; init; }
    public double LayerScaleInit { get; init; } = 1e-6;
    public double NormEps { get; init; } = 1e-6;
    public int ImageSize { get; init; } = 224;
    /// <summary>Per stage: the MoE of that stage's blocks (Layers index blocks within the stage), or null.</summary>
    public MoeConfig?[] StageMoe { get; init; } = [null, null, null, null];

    public void Validate()
    {
        if (Depths.Length != 4 || Dims.Length != 4) throw new ArgumentException("ConvNeXt: depths and dims need 4 stages");
        if (StageMoe.Length != 4) throw new ArgumentException("ConvNeXt: StageMoe needs 4 entries (null for dense stages)");
        if (ImageSize % 32 != 0) throw new ArgumentException($"ConvNeXt: image size {ImageSize} must be a multiple of 32");
        for (int s = 0; s < 4; s++) StageMoe[s]?.Validate($"ConvNeXt stage {s} MoE", Depths[s]);
    }
}

/// <summary>A registered model: its name and exactly one architecture config.</summary>
public sealed record ModelSpec(string Variant, VitConfig? Vit = null, ConvNeXtConfig? ConvNeXt = null)
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = false,
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ConfigJson() => Vit is not null ? JsonSerializer.Serialize(Vit, Json) : JsonSerializer.Serialize(ConvNeXt, Json);

    /// <summary>"vit" or "convnext": the architecture key checkpoints record beside <see cref="ConfigJson"/>.</summary>
    [JsonIgnore] public string Architecture => Vit is not null ? "vit" : "convnext";

    /// <summary>The spec a checkpoint recorded (variant, architecture, config JSON); a bad config throws <see cref="JsonException"/>, an unknown architecture <see cref="InvalidDataException"/>.</summary>
    public static ModelSpec FromConfig(string variant, string architecture, string configJson) => architecture switch
    {
        "vit" => new ModelSpec(variant, Vit: JsonSerializer.Deserialize<VitConfig>(configJson, Json) ?? throw new JsonException("config is null")),
        "convnext" => new ModelSpec(variant, ConvNeXt: JsonSerializer.Deserialize<ConvNeXtConfig>(configJson, Json) ?? throw new JsonException("config is null")),
        _ => throw new InvalidDataException($"unknown architecture '{architecture}' (vit or convnext)"),
    };

    /// <summary>The MoE configs in block order, with the global block index they sit at.</summary>
    public IEnumerable<(string Prefix, int Dim, MoeConfig Moe)> MoeLayers()
    {
        if (Vit?.Moe is { } m)
            foreach (var l in m.Layers.Order()) yield return ($"blocks.{l}.mlp", Vit.Dim, m);
        if (ConvNeXt is { } c)
            for (int s = 0; s < 4; s++)
                if (c.StageMoe[s] is { } sm)
                    foreach (var l in sm.Layers.Order()) yield return ($"stages.{s}.blocks.{l}.mlp", c.Dims[s], sm);
    }
}
