using System.Text.Json;
using System.Text.Json.Serialization;

namespace Jetpack.Application.Runs;

/// <summary>
/// The one JSON dialect of specs, configs and what travels between processes (a job spec, a
/// `jetpack train` config, a worker's StartJob spec, the recycle child's task): snake_case names,
/// enums as snake_case strings, an unknown field an error naming it, comments and trailing commas
/// allowed in files, nesting bounded.
/// </summary>
public static class SpecJson
{
    /// <summary>Deepest nesting of mappings/sequences accepted (a real spec nests 2–3 levels).</summary>
    public const int MaxDepth = 64;

    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        MaxDepth = MaxDepth,
    };
}
