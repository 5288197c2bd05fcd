using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Jetpack.Model.Models;

namespace Jetpack.Model.Registry;

/// <summary>
/// What a run spec's <c>model:</c> (or a <c>--model</c> option) asks for: a registered variant
/// (<see cref="Base"/>), optionally with its expert configuration, class count or input size
/// changed (issues 18 and 19). A plain name is the request <c>{base: name}</c>; a mapping overrides
/// the fields it gives. <see cref="ModelRegistry.Resolve"/> turns it into a <see cref="ModelSpec"/>,
/// checking every field by name and bounding sizes before anything is allocated.
/// In YAML: <c>model: v_jetmoe_t</c>, or
/// <c>model: {base: v_jetmoe_t, core_experts: 392, universal_experts: 784, slots_per_expert: 2, moe_layers: [6..11]}</c>.
/// </summary>
public sealed record ModelRequest : ExpertFields
{
    /// <summary>The registered variant the request starts from (or, before the CLI inlines it, a .yaml/.yml/.json file holding a mapping).</summary>
    public string Base { get; init; } = "";
    /// <summary>A class count, or "auto": the run's dataset's classes.</summary>
    [JsonConverter(typeof(IntOrWordJsonConverter))]
    public string? NumClasses { get; init; }
    public int? ImageSize { get; init; }
    /// <summary>ConvNeXt bases: the expert fields of each stage (0-based) that changes; null makes the stage dense.</summary>
    public Dictionary<int, ExpertFields?>? Stages { get; init; }

    public const string Auto = "auto";
    /// <summary>The fields of the mapping form, for errors.</summary>
    public const string Fields = "base, core_experts, universal_experts, slots_per_expert, moe_layers, core_hidden_ratio, universal_hidden_ratio, kind, num_classes, image_size, stages (ConvNeXt)";

    public static implicit operator ModelRequest(string name) => new() { Base = name };

    /// <summary>Only a name: no field overridden.</summary>
    [JsonIgnore]
    public bool IsName => !AnyExpertField && NumClasses is null && ImageSize is null && Stages is null;

    /// <summary>A name that is a model file (.yaml, .yml, .json) rather than a variant: the reader inlines it.</summary>
    [JsonIgnore]
    public bool IsFile => IsName && Path.GetExtension(Base).ToLowerInvariant() is ".yaml" or ".yml" or ".json";

    /// <summary>Whether num_classes is "auto" (resolved against the run's dataset).</summary>
    [JsonIgnore]
    public bool AutoClasses => NumClasses == Auto;

    /// <summary>Serialisation of the mapping form (snake_case, enums lower case, nulls left out).</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower), new ModelRequestJsonConverter() },
    };

    /// <summary>The name alone, or the mapping as one line of JSON (also valid YAML): what `--model` accepts back.</summary>
    public override string ToString() => IsName ? Base : JsonSerializer.Serialize(this, Json);

    /// <summary>Parses the text of a `--model` option that is a mapping (JSON/YAML flow as JSON) or a name.</summary>
    public static ModelRequest FromJson(string json) =>
        JsonSerializer.Deserialize<ModelRequest>(json, Json) ?? throw new ModelRequestException("model", "is empty");

    public bool Equals(ModelRequest? other) => other is not null && ToString() == other.ToString();
    public override int GetHashCode() => ToString().GetHashCode(StringComparison.Ordinal);
}

/// <summary>
/// The expert configuration of an MoE layer set a request can change: of a ViT's MoE layers (on the
/// request itself), or of one ConvNeXt stage (<see cref="ModelRequest.Stages"/>, where
/// <see cref="MoeLayers"/> are block indices within the stage). Null fields keep the base's value.
/// </summary>
public record ExpertFields
{
    public int? CoreExperts { get; init; }
    public int? UniversalExperts { get; init; }
    public int? SlotsPerExpert { get; init; }
    /// <summary>0-based block indices; YAML may write ranges as "6..11".</summary>
    [JsonConverter(typeof(LayerListJsonConverter))]
    public int[]? MoeLayers { get; init; }
    public double? CoreHiddenRatio { get; init; }
    public double? UniversalHiddenRatio { get; init; }
    public MoeKind? Kind { get; init; }

    [JsonIgnore]
    public bool AnyExpertField => CoreExperts is not null || UniversalExperts is not null || SlotsPerExpert is not null || MoeLayers is not null
                                  || CoreHiddenRatio is not null || UniversalHiddenRatio is not null || Kind is not null;
}

/// <summary>A model request field that is wrong: names the field (bare, <c>core_experts</c>; empty for the whole model) and the problem.
/// Thrown while reading a mapping too (not a JsonException), so readers can name the field inside it.</summary>
public sealed class ModelRequestException(string field, string problem) : ArgumentException($"{field}: {problem}")
{
    public string Field { get; } = field;
    public string Problem { get; } = problem;
}

/// <summary><c>model:</c> is a name (string) or a mapping of <see cref="ModelRequest"/> fields (on RunSpec.Model, and in <see cref="ModelRequest.Json"/>).</summary>
public sealed class ModelRequestJsonConverter : JsonConverter<ModelRequest>
{
    public override ModelRequest? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String) return new ModelRequest { Base = reader.GetString()! };
        if (reader.TokenType != JsonTokenType.StartObject)
            throw new ModelRequestException("", $"must be a variant name or a mapping of fields ({ModelRequest.Fields})");
        // The mapping's fields, read with the caller's options (snake_case, unknown fields refused) minus this converter.
        // A field's error leaves as a ModelRequestException naming it: the inner read's path starts at the mapping.
        ModelRequest? request;
        try { request = JsonSerializer.Deserialize<ModelRequest>(ref reader, InnerOptions(options)); }
        catch (JsonException e)
        {
            string field = e.Path is { Length: > 2 } p && p.StartsWith("$.", StringComparison.Ordinal) ? p[2..] : "";
            string problem = e.Message.Contains("could not be mapped", StringComparison.Ordinal) ? "unknown field"
                           : e.Message.Contains("could not be converted", StringComparison.Ordinal) ? "has the wrong type"
                           : e.Message;
            throw new ModelRequestException(field, problem);
        }
        if (string.IsNullOrEmpty(request?.Base)) throw new ModelRequestException("base", "is required (a registered variant, see `jetpack models`)");
        return request;
    }

    public override void Write(Utf8JsonWriter writer, ModelRequest value, JsonSerializerOptions options)
    {
        if (value.IsName) writer.WriteStringValue(value.Base);
        else JsonSerializer.Serialize(writer, value, InnerOptions(options));
    }

    static readonly System.Runtime.CompilerServices.ConditionalWeakTable<JsonSerializerOptions, JsonSerializerOptions> Inner = new();

    /// <summary>The caller's options for the mapping's own fields: snake_case, unknown fields refused, nulls left out, without this converter.</summary>
    static JsonSerializerOptions InnerOptions(JsonSerializerOptions outer) => Inner.GetValue(outer, o =>
    {
        var copy = new JsonSerializerOptions(o)
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        };
        foreach (var c in copy.Converters.OfType<ModelRequestJsonConverter>().ToList()) copy.Converters.Remove(c);
        if (!copy.Converters.Any(c => c is JsonStringEnumConverter)) copy.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower));
        return copy;
    });
}

/// <summary>
/// A list of block indices: integers and ranges written "a..b" (inclusive), or one such range alone.
/// A range is bounded before it is expanded (<see cref="ModelLimits.MaxDepth"/>): "0..2147483647" never builds 2³¹ ints.
/// </summary>
public sealed class LayerListJsonConverter : JsonConverter<int[]>
{
    public override int[]? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var layers = new List<int>();
        if (reader.TokenType == JsonTokenType.String) { AddRange(reader.GetString()!, layers); return [.. layers]; }
        if (reader.TokenType != JsonTokenType.StartArray) throw new JsonException("must be a list of block indices, e.g. [6, 7] or [6..11]");
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (layers.Count > ModelLimits.MaxDepth) throw new JsonException($"lists more than {ModelLimits.MaxDepth} layers");
            if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int l)) layers.Add(l);
            else if (reader.TokenType == JsonTokenType.String) AddRange(reader.GetString()!, layers);
            else throw new JsonException("must list block indices (integers, or ranges like \"6..11\")");
        }
        return [.. layers];
    }

    static void AddRange(string text, List<int> into)
    {
        var parts = text.Split("..");
        if (parts.Length != 2 || !int.TryParse(parts[0].Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int a)
            || !int.TryParse(parts[1].Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int b))
            throw new JsonException($"'{text}' is not a block index or a range like 6..11");
        if (a > b) throw new JsonException($"range '{text}' runs backwards");
        if ((long)b - a + 1 + into.Count > ModelLimits.MaxDepth) throw new JsonException($"range '{text}' spans more than {ModelLimits.MaxDepth} layers");
        for (int i = a; i <= b; i++) into.Add(i);
    }

    public override void Write(Utf8JsonWriter writer, int[] value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (var v in value) writer.WriteNumberValue(v);
        writer.WriteEndArray();
    }
}

/// <summary>An integer or a word (num_classes: 100 | auto), kept as its text.</summary>
public sealed class IntOrWordJsonConverter : JsonConverter<string>
{
    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.Number when reader.TryGetInt64(out long n) => n.ToString(CultureInfo.InvariantCulture),
        JsonTokenType.String => reader.GetString(),
        _ => throw new JsonException("must be an integer or 'auto'"),
    };

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options)
    {
        if (long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long n)) writer.WriteNumberValue(n);
        else writer.WriteStringValue(value);
    }
}
