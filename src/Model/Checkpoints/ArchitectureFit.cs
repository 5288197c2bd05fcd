using System.Text.Json;
using System.Text.Json.Nodes;
using Jetpack.Model.Models;

namespace Jetpack.Model.Checkpoints;

/// <summary>
/// Whether a checkpoint saved for one model fits another (issue 19): the architecture must match —
/// what decides tensor names and shapes and the routing structure (widths, depth, patch, pooling,
/// MoE kind, layers, experts, slots, hidden sizes, combine normalisation, temperatures). Regularisation
/// and init-only settings are not compared: dropout, DropPath, routing noise, the expert-drop mode,
/// the initial temperature and the LayerScale init value (its presence is compared). The variant
/// name is not compared either: a registered variant and a request that resolves to the same
/// architecture are the same model. A difference names the field (snake_case, e.g. <c>moe.core_experts</c>).
/// </summary>
public sealed record ArchitectureFit(IReadOnlyList<string> Differences, int? FileClasses, int? ModelClasses)
{
    public bool Fits => Differences.Count == 0;
    /// <summary>Only the class count differs: the head can be re-initialised and every other tensor loaded strictly.</summary>
    public bool HeadOnly => Differences.Count == 1 && FileClasses != ModelClasses;

    public string Describe() => "was saved for another model:\n  " + string.Join("\n  ", Differences);

    /// <summary>The head's state-dict keys (ViT: head.*, ConvNeXt: head.fc.*; the ConvNeXt head norm is not class-sized).</summary>
    public static bool IsHeadKey(ModelSpec spec, string key) =>
        spec.Vit is not null ? key.StartsWith("head.", StringComparison.Ordinal) : key.StartsWith("head.fc.", StringComparison.Ordinal);

    public static ArchitectureFit Compare(ModelSpec file, ModelSpec model)
    {
        var differences = new List<string>();
        string fileArch = file.Vit is not null ? "vit" : "convnext", modelArch = model.Vit is not null ? "vit" : "convnext";
        if (fileArch != modelArch) return new([$"architecture: file {fileArch}, model {modelArch}"], null, null);
        Diff(Normalised(file), Normalised(model), "", differences);
        return new(differences, Classes(file), Classes(model));
    }

    static int Classes(ModelSpec s) => s.Vit?.NumClasses ?? s.ConvNeXt!.NumClasses;

    /// <summary>The config as JSON with regularisation and init-only values set to fixed ones.</summary>
    static JsonNode Normalised(ModelSpec s)
    {
        static MoeConfig? Quiet(MoeConfig? m) => m is null ? null : m with
        {
            ExpertDropout = 0,
            ExpertDrop = ExpertDropMode.Elementwise,
            MoeDropPathRate = 0,
            NoiseStd = 0,
            NoiseInEval = false,
            InitialTemperature = 0,
        };
        object config = s.Vit is { } v
            ? v with { DropPathRate = 0, DropRate = 0, LayerScaleInit = v.LayerScaleInit is null ? null : 1, Moe = Quiet(v.Moe) }
            : s.ConvNeXt! with { DropPathRate = 0, LayerScaleInit = 1, StageMoe = s.ConvNeXt.StageMoe.Select(Quiet).ToArray() };
        return JsonSerializer.SerializeToNode(config, config.GetType(), ModelSpec.Json)!;
    }

    static void Diff(JsonNode? a, JsonNode? b, string path, List<string> into)
    {
        if (a is JsonObject oa && b is JsonObject ob)
        {
            foreach (var key in oa.Select(kv => kv.Key).Union(ob.Select(kv => kv.Key)))
                Diff(oa[key], ob[key], path.Length == 0 ? Snake(key) : $"{path}.{Snake(key)}", into);
            return;
        }
        string ta = a?.ToJsonString() ?? "none", tb = b?.ToJsonString() ?? "none";
        if (ta != tb) into.Add($"{path}: file {ta}, model {tb}");
    }

    static string Snake(string name) => JsonNamingPolicy.SnakeCaseLower.ConvertName(name);
}
