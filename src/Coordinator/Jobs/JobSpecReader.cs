using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Jetpack.Application.Runs;

namespace Jetpack.Coordinator.Jobs;

/// <summary>
/// Reads a job spec from YAML or JSON. YAML is first turned into a JSON tree (plain scalars typed
/// by the YAML 1.2 core schema), so both formats go through one deserializer with one set of
/// rules: snake_case names, unknown fields are errors, and every error names the source and the
/// field (e.g. <c>job.yaml: recipe.steps: must be ≥ 1, got 0</c>). Specs arrive from the network
/// (issue 12): before any conversion the text is bounded in size (<see cref="MaxBytes"/>) and nesting
/// (<see cref="MaxDepth"/>), and YAML anchors/aliases are refused (<see cref="YamlSpecTree"/>), so no
/// input can exhaust the coordinator's stack, memory or time; every failure is a <see cref="RunSpecException"/>.
/// </summary>
public static partial class JobSpecReader
{
    static JsonSerializerOptions Json => SpecJson.Options;

    /// <summary>Largest spec accepted, in UTF-8 bytes (a real spec is a few hundred bytes).</summary>
    public const int MaxBytes = 1 << 20;
    /// <summary>Deepest nesting of mappings/sequences accepted (a real spec nests 2–3 levels).</summary>
    public const int MaxDepth = SpecJson.MaxDepth;

    /// <summary>"yaml" for .yaml/.yml, else "json".</summary>
    public static string FormatOf(string path) =>
        Path.GetExtension(path).ToLowerInvariant() is ".yaml" or ".yml" ? "yaml" : "json";

    /// <summary>Reads and validates a spec file. Relative input paths in it are relative to the file's
    /// directory and come back absolute (the coordinator runs elsewhere); files it names must exist.
    /// <c>out</c> stays as written: the coordinator places it inside its data directory.</summary>
    public static JobSpec Load(string path)
    {
        var spec = ResolvePaths(Parse(ReadText(path), FormatOf(path), path), Path.GetDirectoryName(Path.GetFullPath(path))!, path);
        JobSpecValidator.Validate(spec, path);
        return spec;
    }

    /// <summary>A spec or config file's text, reading at most <see cref="MaxBytes"/> + 1 bytes (a huge file or a
    /// device such as /dev/zero is refused, not read whole).</summary>
    public static string ReadText(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"job spec not found: {path}", path);
        using var stream = File.OpenRead(path);
        var buffer = new byte[MaxBytes + 1];
        int read = 0, n;
        while (read < buffer.Length && (n = stream.Read(buffer, read, buffer.Length - read)) > 0) read += n;
        if (read > MaxBytes) throw TooLarge(path, "more than " + MaxBytes.ToString("N0", CultureInfo.InvariantCulture));
        return new System.Text.UTF8Encoding(false).GetString(buffer, 0, read).TrimStart('\uFEFF');
    }

    static RunSpecException TooLarge(string source, string size) =>
        new(source, "(root)", $"is {size} bytes, larger than the limit of a spec ({MaxBytes.ToString("N0", CultureInfo.InvariantCulture)} bytes)");

    /// <summary>Every file or directory the spec names, made absolute against <paramref name="directory"/>, and a
    /// model file (<c>model: m.yaml</c>) inlined, so the coordinator gets the mapping itself;
    /// <c>out</c> is left as written: it is a path on the coordinator, inside its data directory (<see cref="JobOutputs"/>).</summary>
    public static JobSpec ResolvePaths(JobSpec spec, string directory, string source = "job spec")
    {
        string? Abs(string? p) => string.IsNullOrEmpty(p) ? p : Path.GetFullPath(p, directory);
        return spec with
        {
            Recycle = spec.Recycle with
            {
                From = Abs(spec.Recycle.From)!,
                Target = Abs(spec.Recycle.Target),
                Stats = Abs(spec.Recycle.Stats),
                ProfileImages = Abs(spec.Recycle.ProfileImages),
            },
            Data = spec.Data with { Root = Abs(spec.Data.Root) },
            Model = ModelArgument.Inline(spec.Model, directory, source),
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
        // Cheap bound first (a char is at least one UTF-8 byte), then the exact one.
        if (text.Length > MaxBytes || System.Text.Encoding.UTF8.GetByteCount(text) > MaxBytes)
            throw TooLarge(source, System.Text.Encoding.UTF8.GetByteCount(text).ToString("N0", CultureInfo.InvariantCulture));
        JsonNode? tree = format switch
        {
            "yaml" => YamlSpecTree.Convert(text, source),
            "json" => ParseJsonTree(text, source),
            _ => throw new RunSpecException(source, "format", $"must be 'yaml' or 'json', got '{format}'"),
        };
        if (tree is not JsonObject) throw new RunSpecException(source, "(root)", $"must be a mapping of fields ({fieldsHint})");
        try
        {
            return tree.Deserialize<T>(Json) ?? throw new RunSpecException(source, "(root)", "is empty");
        }
        catch (JsonException e)
        {
            throw new RunSpecException(source, FieldOf(e.Path), Problem(e));
        }
        catch (Jetpack.Model.Registry.ModelRequestException e)
        {
            // Inside a model mapping: the field is model.<field> in a spec, the bare field when the text is the mapping itself.
            string prefix = typeof(T) == typeof(Jetpack.Model.Registry.ModelRequest) ? "" : "model";
            string field = e.Field.Length == 0 ? (prefix.Length == 0 ? "(root)" : prefix) : prefix.Length == 0 ? e.Field : $"{prefix}.{e.Field}";
            throw new RunSpecException(source, field, e.Problem);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or FormatException or OverflowException or ArgumentException and not RunSpecException)
        {
            // A value the deserializer cannot represent (found by the fuzz test): still the user's input.
            throw new RunSpecException(source, "(root)", e.Message);
        }
    }

    static JsonNode? ParseJsonTree(string text, string source)
    {
        try
        {
            return JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = MaxDepth });
        }
        catch (JsonException e)
        {
            string problem = e.Message.Contains("maximum configured depth", StringComparison.OrdinalIgnoreCase)
                ? $"nested deeper than {MaxDepth} levels (the limit of a spec)"
                : "not valid JSON: " + e.Message;
            throw new RunSpecException(source, $"line {(e.LineNumber ?? 0) + 1}", problem);
        }
        catch (ArgumentException e) when (e is not RunSpecException)
        {
            throw new RunSpecException(source, "(root)", "not valid JSON: " + e.Message);   // e.g. a lone UTF-16 surrogate
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

    /// <summary>The expected type in the user's words; always names one (issue 12: it used to come out blank).</summary>
    internal static string ExpectedType(string message)
    {
        var m = ConvertedTo().Match(message);
        return "expected " + (m.Success ? Friendly(m.Groups[1].Value) : "a different type");
    }

    static string Friendly(string typeName)
    {
        var nullable = NullableOf().Match(typeName);
        if (nullable.Success) return Friendly(nullable.Groups[1].Value);
        if (typeName.EndsWith("[]", StringComparison.Ordinal) || typeName.Contains("List`1", StringComparison.Ordinal)
            || typeName.Contains("Collection`1", StringComparison.Ordinal) || typeName.Contains("Enumerable`1", StringComparison.Ordinal)) return "a list";
        if (typeName.Contains("Dictionary`2", StringComparison.Ordinal)) return "a mapping";
        switch (typeName)
        {
            case "System.Int16" or "System.Int32" or "System.Int64" or "System.UInt16" or "System.UInt32" or "System.UInt64" or "System.Byte": return "an integer";
            case "System.Single" or "System.Double" or "System.Decimal": return "a number";
            case "System.Boolean": return "true or false";
            case "System.String" or "System.Char": return "a string";
        }
        var type = AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetType(typeName, throwOnError: false)).FirstOrDefault(t => t is not null);
        if (type is { IsEnum: true })
            return "one of " + string.Join(", ", Enum.GetNames(type).Select(n => JsonNamingPolicy.SnakeCaseLower.ConvertName(n)));
        if (type is { IsClass: true } or { IsValueType: true, IsPrimitive: false }) return "a mapping of fields";
        string name = typeName.Split('[')[0].Split('.')[^1].Split('`')[0];
        return name.Length > 0 ? name.ToLowerInvariant() : "a different type";
    }

    // "… could not be converted to System.Int64. Path: $.recipe.steps | …": the type ends before ". Path".
    [GeneratedRegex(@"converted to (\S+?)\.?(?: Path:|$)")]
    private static partial Regex ConvertedTo();

    [GeneratedRegex(@"^System\.Nullable`1\[\[?([^,\]]+)")]
    private static partial Regex NullableOf();
}
