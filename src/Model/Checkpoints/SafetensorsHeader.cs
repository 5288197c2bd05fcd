using System.Text.Json;
using System.Text.Unicode;

namespace Jetpack.Model.Checkpoints;

/// <summary>
/// A parsed, fully validated safetensors header: the entries sorted by data offset and the
/// metadata. Parsing is strict — every rule of the format is checked here, once, on open, so
/// that reading a tensor later can trust the offsets without re-checking them.
/// </summary>
internal sealed record SafetensorsHeader(IReadOnlyList<SafetensorsEntry> Entries, IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>The key that holds string metadata instead of a tensor.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>Headers beyond this are refused before any allocation (the reference implementation's limit).</summary>
    public const long MaxLength = 100_000_000;

    /// <summary>
    /// Parses <paramref name="json"/> (the N header bytes, trailing space padding allowed) of a file
    /// whose data section holds <paramref name="dataLength"/> bytes.
    /// </summary>
    public static SafetensorsHeader Parse(ReadOnlySpan<byte> json, long dataLength, string path)
    {
        // Utf8JsonReader validates UTF-8 only inside the strings it decodes; check all of it once.
        if (!Utf8.IsValid(json))
            throw Bad(path, null, "the header is not valid UTF-8");

        var entries = new List<SafetensorsEntry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        // JsonDocument keeps duplicate keys silently (the last wins on lookup); a duplicate tensor
        // name would make the file mean two things, so keys are collected and checked here.
        var keys = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw Bad(path, null, "the header is not a JSON object");
            while (Next(ref reader, path) != JsonTokenType.EndObject)
            {
                var key = Text(ref reader, path); // inside an object, every other token is a property name
                if (!keys.Add(key))
                    throw Bad(path, key == MetadataKey ? null : key, $"'{key}' appears more than once in the header");
                if (key == MetadataKey)
                    ReadMetadata(ref reader, metadata, path);
                else if (key.Length == 0)
                    throw Bad(path, null, "a tensor has an empty name");
                else
                    entries.Add(ReadEntry(ref reader, key, path));
            }
            // Only whitespace (the writer's padding) may follow; the reader throws on anything else.
            if (reader.Read())
                throw Bad(path, null, "the header has content after its JSON object");
        }
        catch (JsonException e)
        {
            throw Bad(path, null, $"the header is not valid JSON ({e.Message})", e);
        }

        var sorted = CheckTiling(entries, dataLength, path);
        return new SafetensorsHeader(sorted, metadata);
    }

    /// <summary>
    /// The data ranges must tile [0, dataLength) exactly: no overlap (two tensors sharing bytes),
    /// no gap and no trailing bytes (bytes no tensor accounts for could hide anything).
    /// </summary>
    private static List<SafetensorsEntry> CheckTiling(List<SafetensorsEntry> entries, long dataLength, string path)
    {
        // Stable sort, so zero-length tensors at one offset keep their header order.
        var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long covered = 0;
        SafetensorsEntry? previous = null;
        foreach (var entry in sorted)
        {
            if (entry.End > dataLength)
                throw Bad(path, entry.Name, $"data_offsets [{entry.Begin}, {entry.End}) run past the end of the " +
                                            $"{dataLength}-byte data section");
            if (entry.Begin < covered)
                throw Bad(path, entry.Name, $"its data [{entry.Begin}, {entry.End}) overlaps tensor " +
                                            $"'{previous!.Name}' [{previous.Begin}, {previous.End})");
            if (entry.Begin > covered)
                throw Bad(path, entry.Name, $"bytes [{covered}, {entry.Begin}) before its data belong to no tensor");
            covered = entry.End;
            previous = entry;
        }
        if (covered != dataLength)
            throw Bad(path, null, $"{dataLength - covered} trailing bytes after the last tensor's data " +
                                  $"(tensors cover {covered} of {dataLength} data bytes)");
        return sorted;
    }

    private static SafetensorsEntry ReadEntry(ref Utf8JsonReader reader, string name, string path)
    {
        if (Next(ref reader, path) != JsonTokenType.StartObject)
            throw Bad(path, name, "the entry is not a JSON object");
        string? dtypeText = null;
        long[]? shape = null, offsets = null;
        while (Next(ref reader, path) != JsonTokenType.EndObject)
        {
            var field = Text(ref reader, path);
            switch (field)
            {
                case "dtype" when dtypeText is null:
                    if (Next(ref reader, path) != JsonTokenType.String)
                        throw Bad(path, name, "'dtype' is not a string");
                    dtypeText = Text(ref reader, path);
                    break;
                case "shape" when shape is null:
                    shape = ReadNaturals(ref reader, name, field, path);
                    break;
                case "data_offsets" when offsets is null:
                    offsets = ReadNaturals(ref reader, name, field, path);
                    break;
                case "dtype" or "shape" or "data_offsets":
                    throw Bad(path, name, $"the entry has '{field}' twice");
                default:
                    throw Bad(path, name, $"the entry has an unknown field '{field}'");
            }
        }
        if (dtypeText is null) throw Bad(path, name, "the entry has no 'dtype'");
        if (shape is null) throw Bad(path, name, "the entry has no 'shape'");
        if (offsets is null) throw Bad(path, name, "the entry has no 'data_offsets'");
        if (!SafetensorsDTypes.TryParseHeaderString(dtypeText, out var dtype))
            throw Bad(path, name, $"unknown or unsupported dtype '{dtypeText}' (supported: " +
                                  $"{string.Join(", ", Enum.GetValues<SafetensorsDType>().Select(d => d.ToHeaderString()))})");
        if (offsets.Length != 2)
            throw Bad(path, name, $"'data_offsets' has {offsets.Length} numbers, not 2 [begin, end]");

        var (begin, end) = (offsets[0], offsets[1]);
        if (begin > end)
            throw Bad(path, name, $"data_offsets [{begin}, {end}) begin after they end");
        // The bytes the shape needs, and the same product with zero dims counted as 1: torch computes
        // strides that way, so [0, 2^62, 4] (zero bytes) would still overflow inside torch.empty.
        long expectedBytes = dtype.ElementSize(), strideBytes = dtype.ElementSize();
        try
        {
            foreach (var dim in shape)
            {
                expectedBytes = checked(expectedBytes * dim);
                strideBytes = checked(strideBytes * Math.Max(dim, 1));
            }
        }
        catch (OverflowException)
        {
            throw Bad(path, name, $"shape [{string.Join(", ", shape)}] is too large to address");
        }
        if (end - begin != expectedBytes)
            throw Bad(path, name, $"shape [{string.Join(", ", shape)}] of {dtypeText} needs {expectedBytes} bytes " +
                                  $"but data_offsets [{begin}, {end}) hold {end - begin}");
        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }

    /// <summary>Reads a JSON array of non-negative 64-bit integers (shape dims or offsets).</summary>
    private static long[] ReadNaturals(ref Utf8JsonReader reader, string name, string field, string path)
    {
        if (Next(ref reader, path) != JsonTokenType.StartArray)
            throw Bad(path, name, $"'{field}' is not an array");
        var values = new List<long>();
        while (Next(ref reader, path) != JsonTokenType.EndArray)
        {
            // TryGetInt64 refuses 1.5, 1e3 and values beyond Int64: all are malformed here.
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var value))
                throw Bad(path, name, $"'{field}' holds something other than an integer");
            if (value < 0)
                throw Bad(path, name, $"'{field}' holds a negative number ({value})");
            values.Add(value);
        }
        return values.ToArray();
    }

    private static void ReadMetadata(ref Utf8JsonReader reader, Dictionary<string, string> metadata, string path)
    {
        if (Next(ref reader, path) != JsonTokenType.StartObject)
            throw Bad(path, null, $"'{MetadataKey}' is not a JSON object of strings");
        while (Next(ref reader, path) != JsonTokenType.EndObject)
        {
            var key = Text(ref reader, path);
            if (Next(ref reader, path) != JsonTokenType.String)
                throw Bad(path, null, $"'{MetadataKey}' value of '{key}' is not a string");
            if (!metadata.TryAdd(key, Text(ref reader, path)))
                throw Bad(path, null, $"'{MetadataKey}' has the key '{key}' more than once");
        }
    }

    /// <summary>The current string or property name. GetString throws InvalidOperationException for
    /// escapes that decode to a lone surrogate ("\ud800"): that too is a malformed header.</summary>
    private static string Text(ref Utf8JsonReader reader, string path)
    {
        try
        {
            return reader.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            throw Bad(path, null, $"the header's JSON has a string that is not valid text ({e.Message})", e);
        }
    }

    /// <summary>Advances one token; running out of input inside the object is a format error.</summary>
    private static JsonTokenType Next(ref Utf8JsonReader reader, string path) =>
        reader.Read() ? reader.TokenType : throw Bad(path, null, "the header's JSON ends early");

    private static SafetensorsFormatException Bad(string path, string? tensor, string problem, Exception? inner = null) =>
        new(path, tensor, problem, inner);
}
