using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using Jetpack.Application.Runs;

namespace Jetpack.Coordinator.Jobs;

/// <summary>
/// YAML text → JSON tree, built from YamlDotNet's event stream with an explicit stack (issue 12):
/// no recursion anywhere, so hostile nesting cannot overflow the stack; a collection deeper than
/// <see cref="JobSpecReader.MaxDepth"/> stops the parse at its first event; anchors and aliases are
/// refused, because an alias can make a document cyclic (<c>x: &amp;a [*a]</c>) or exponentially large
/// (a "billion laughs" bomb of a few hundred bytes). Plain scalars are typed by the YAML 1.2 core schema.
/// </summary>
static partial class YamlSpecTree
{
    /// <summary>One open collection: its node, its field path, and (mappings) the key awaiting its value.</summary>
    sealed class Frame(JsonNode node, string path)
    {
        public JsonNode Node { get; } = node;
        public string Path { get; } = path;
        public string? Key { get; set; }
    }

    public static JsonNode? Convert(string text, string source)
    {
        var parser = new Parser(new StringReader(text));
        var open = new Stack<Frame>();
        JsonNode? root = null;
        int documents = 0, line = 1;
        try
        {
            while (parser.MoveNext())
            {
                var e = parser.Current!;
                line = (int)e.Start.Line;
                string here = open.Count == 0 ? "(root)" : ChildPath(open.Peek());
                switch (e)
                {
                    case DocumentStart when ++documents > 1:
                        throw new RunSpecException(source, "(root)", $"line {line}: must hold exactly one YAML document, found a second one");
                    case AnchorAlias alias:
                        throw new RunSpecException(source, here, $"line {line}: YAML aliases (*{alias.Value}) are not allowed in a spec (they can make it cyclic or exponentially large); write the value out");
                    case NodeEvent { Anchor.IsEmpty: false } anchored:
                        throw new RunSpecException(source, here, $"line {line}: YAML anchors (&{anchored.Anchor}) and aliases are not allowed in a spec (they can make it cyclic or exponentially large); write the value out");
                    case MappingStart or SequenceStart:
                        if (open.Count > 0 && open.Peek() is { Node: JsonObject, Key: null })
                            throw new RunSpecException(source, open.Peek().Path is { Length: > 0 } p ? p : "(root)", $"line {line}: keys must be plain names");
                        if (open.Count >= JobSpecReader.MaxDepth)
                            throw new RunSpecException(source, here, $"line {line}: nested deeper than {JobSpecReader.MaxDepth} levels (the limit of a spec)");
                        open.Push(new Frame(e is MappingStart ? new JsonObject() : new JsonArray(), open.Count == 0 ? "" : ChildPath(open.Peek())));
                        break;
                    case MappingEnd or SequenceEnd:
                        var done = open.Pop();
                        if (open.Count == 0) root = done.Node;
                        else Attach(open.Peek(), done.Node);
                        break;
                    case YamlDotNet.Core.Events.Scalar s:
                        if (open.Count == 0) root = Scalar(s);
                        else if (open.Peek() is { Node: JsonObject obj, Key: null } map)
                        {
                            string key = s.Value;
                            map.Key = key;
                            if (obj.ContainsKey(key)) throw new RunSpecException(source, ChildPath(map), $"line {line}: given twice");
                        }
                        else Attach(open.Peek(), Scalar(s));
                        break;
                }
            }
        }
        catch (YamlException e)
        {
            throw new RunSpecException(source, $"line {e.Start.Line}", "not valid YAML: " + (e.InnerException?.Message ?? e.Message));
        }
        catch (Exception e) when (e is InvalidOperationException or IndexOutOfRangeException or FormatException or OverflowException
                                  || e is ArgumentException and not RunSpecException)
        {
            // YamlDotNet's scanner throws these on some malformed input (found by the fuzz test): still bad YAML.
            throw new RunSpecException(source, $"line {line}", $"not valid YAML: the parser stopped after this line ({e.Message})");
        }
        if (documents == 0) throw new RunSpecException(source, "(root)", "must hold exactly one YAML document, found 0");
        return root;
    }

    static string ChildPath(Frame parent) => parent.Node switch
    {
        JsonArray a => $"{parent.Path}[{a.Count}]",
        _ => parent.Path.Length == 0 ? parent.Key ?? "" : $"{parent.Path}.{parent.Key}",
    };

    static void Attach(Frame parent, JsonNode? value)
    {
        if (parent.Node is JsonArray array) array.Add(value);
        else
        {
            parent.Node[parent.Key!] = value;
            parent.Key = null;
        }
    }

    /// <summary>YAML 1.2 core schema for plain scalars; quoted scalars are always strings. A number too
    /// large for a double stays a string (JSON has no infinity), so the field reports a wrong type.</summary>
    static JsonNode? Scalar(YamlDotNet.Core.Events.Scalar s)
    {
        string v = s.Value;
        if (s.Style is not (ScalarStyle.Plain or ScalarStyle.Any)) return JsonValue.Create(v);
        if (v is "" or "~" or "null" or "Null" or "NULL") return null;
        if (v is "true" or "True" or "TRUE") return JsonValue.Create(true);
        if (v is "false" or "False" or "FALSE") return JsonValue.Create(false);
        if (IntegerPattern().IsMatch(v) && long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l)) return JsonValue.Create(l);
        if (FloatPattern().IsMatch(v) && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d)) return JsonValue.Create(d);
        return JsonValue.Create(v);
    }

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex IntegerPattern();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();
}
