using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Jetpack.Coordinator.Jobs;

/// <summary>
/// Reads a job spec from YAML or JSON. YAML is first turned into a JSON tree (plain scalars typed
/// by the YAML 1.2 core schema), so both formats go through one deserializer with one set of
/// rules: snake_case names, unknown fields are errors, and every error names the source and the
/// field (e.g. <c>job.yaml: recipe.steps: must be ≥ 1, got 0</c>).
/// </summary>
public static partial class JobSpecReader
{
    static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>"yaml" for .yaml/.yml, else "json".</summary>
    public static string FormatOf(string path) =>
        Path.GetExtension(path).ToLowerInvariant() is ".yaml" or ".yml" ? "yaml" : "json";

    /// <summary>Reads and validates a spec file. Relative paths in it are relative to the file's
    /// directory and come back absolute (the coordinator runs elsewhere); files it names must exist.</summary>
    public static JobSpec Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"job spec not found: {path}", path);
        var spec = ResolvePaths(Parse(File.ReadAllText(path), FormatOf(path), path), Path.GetDirectoryName(Path.GetFullPath(path))!);
        JobSpecValidator.Validate(spec, path);
        return spec;
    }

    /// <summary>Every file or directory the spec names, made absolute against <paramref name="directory"/>.</summary>
    public static JobSpec ResolvePaths(JobSpec spec, string directory)
    {
        string? Abs(string? p) => string.IsNullOrEmpty(p) ? p : Path.GetFullPath(p, directory);
        return spec with
        {
            Recycle = spec.Recycle with
            {
                From = Abs(spec.Recycle.From)!, Target = Abs(spec.Recycle.Target), Stats = Abs(spec.Recycle.Stats), ProfileImages = Abs(spec.Recycle.ProfileImages),
            },
            Data = spec.Data with { Root = Abs(spec.Data.Root) },
            Out = Abs(spec.Out),
        };
    }

    /// <summary>The spec as JSON in this reader's dialect (what <c>jetpack submit</c> sends: parsed,
    /// paths resolved, so the same job written differently is the same submission).</summary>
    public static string ToJson(JobSpec spec) => JsonSerializer.Serialize(spec, Json);

    /// <summary>Parses without validating; <paramref name="source"/> names the text in errors.</summary>
    public static JobSpec Parse(string text, string format, string source) =>
        ParseAs<JobSpec>(text, format, source, "name, model, workers, recycle, data, recipe, ...");

    /// <summary>
    /// YAML or JSON text → <typeparamref name="T"/> in this reader's dialect (snake_case, unknown fields
    /// are errors naming the field): shared by job specs and `jetpack train` configs.
    /// </summary>
    public static T ParseAs<T>(string text, string format, string source, string fieldsHint) where T : class
    {
        JsonNode? tree = format switch
        {
            "yaml" => YamlToJson(text, source),
            "json" => ParseJsonTree(text, source),
            _ => throw new JobSpecException(source, "format", $"must be 'yaml' or 'json', got '{format}'"),
        };
        if (tree is not JsonObject) throw new JobSpecException(source, "(root)", $"must be a mapping of fields ({fieldsHint})");
        try
        {
            return tree.Deserialize<T>(Json) ?? throw new JobSpecException(source, "(root)", "is empty");
        }
        catch (JsonException e)
        {
            throw new JobSpecException(source, FieldOf(e.Path), Problem(e));
        }
    }

    static JsonNode? ParseJsonTree(string text, string source)
    {
        try
        {
            return JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new JobSpecException(source, $"line {(e.LineNumber ?? 0) + 1}", "not valid JSON: " + e.Message);
        }
    }

    static string FieldOf(string? path) =>
        string.IsNullOrEmpty(path) || path == "$" ? "(root)" : path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path;

    static string Problem(JsonException e)
    {
        // System.Text.Json names the .NET type; the user wrote YAML/JSON: keep the reason only.
        if (e.Message.Contains("could not be mapped", StringComparison.Ordinal)) return "unknown field";
        if (e.Message.Contains("could not be converted", StringComparison.Ordinal)) return "has the wrong type (" + ExpectedType(e.Message) + ")";
        return e.Message;
    }

    static string ExpectedType(string message)
    {
        var m = ConvertedTo().Match(message);
        return m.Success ? "expected " + m.Groups[1].Value.Split('.')[^1].TrimEnd('1', '`') : message;
    }

    [GeneratedRegex(@"converted to ([\w.`\[\]]+)")]
    private static partial Regex ConvertedTo();

    // ---- YAML → JSON tree ----

    static JsonNode? YamlToJson(string text, string source)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new JobSpecException(source, $"line {e.Start.Line}", "not valid YAML: " + (e.InnerException?.Message ?? e.Message));
        }
        if (stream.Documents.Count != 1) throw new JobSpecException(source, "(root)", $"must hold exactly one YAML document, found {stream.Documents.Count}");
        return Convert(stream.Documents[0].RootNode, source, "");
    }

    static JsonNode? Convert(YamlNode node, string source, string path)
    {
        switch (node)
        {
            case YamlMappingNode map:
                var obj = new JsonObject();
                foreach (var (k, v) in map.Children)
                {
                    if (k is not YamlScalarNode { Value: { } key }) throw new JobSpecException(source, path.Length == 0 ? "(root)" : path, $"line {k.Start.Line}: keys must be plain names");
                    string child = path.Length == 0 ? key : $"{path}.{key}";
                    if (obj.ContainsKey(key)) throw new JobSpecException(source, child, $"line {k.Start.Line}: given twice");
                    obj[key] = Convert(v, source, child);
                }
                return obj;
            case YamlSequenceNode seq:
                var array = new JsonArray();
                int i = 0;
                foreach (var item in seq.Children) array.Add(Convert(item, source, $"{path}[{i++}]"));
                return array;
            case YamlScalarNode scalar:
                return Scalar(scalar);
            default:
                throw new JobSpecException(source, path, $"line {node.Start.Line}: unsupported YAML node ({node.NodeType})");
        }
    }

    /// <summary>YAML 1.2 core schema for plain scalars; quoted scalars are always strings.</summary>
    static JsonNode? Scalar(YamlScalarNode s)
    {
        string v = s.Value ?? "";
        if (s.Style is not (ScalarStyle.Plain or ScalarStyle.Any)) return JsonValue.Create(v);
        if (v is "" or "~" or "null" or "Null" or "NULL") return null;
        if (v is "true" or "True" or "TRUE") return JsonValue.Create(true);
        if (v is "false" or "False" or "FALSE") return JsonValue.Create(false);
        if (IntegerPattern().IsMatch(v) && long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l)) return JsonValue.Create(l);
        if (FloatPattern().IsMatch(v) && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) return JsonValue.Create(d);
        return JsonValue.Create(v);
    }

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex IntegerPattern();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();
}
