using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace Jetpack.Coordinator.Tests.Deploy;

/// <summary>One Kubernetes object as a plain tree (maps, lists, strings), with the file it came from.</summary>
public sealed record Manifest(string File, Dictionary<object, object> Root)
{
    public string Kind => Str(Root, "kind") ?? "";
    public string Name => Str(Map(Root, "metadata"), "name") ?? "";
    public override string ToString() => $"{Kind}/{Name} ({System.IO.Path.GetFileName(File)})";

    public static Dictionary<object, object>? Map(object? node, string key) =>
        node is Dictionary<object, object> m && m.TryGetValue(key, out var v) ? v as Dictionary<object, object> : null;

    public static List<object> List(object? node, string key) =>
        node is Dictionary<object, object> m && m.TryGetValue(key, out var v) && v is List<object> l ? l : [];

    public static string? Str(object? node, string key) =>
        node is Dictionary<object, object> m && m.TryGetValue(key, out var v) ? v?.ToString() : null;

    public static Dictionary<object, object>? Path(object? node, params string[] keys)
    {
        foreach (var k in keys) node = Map(node, k);
        return node as Dictionary<object, object>;
    }

    public static Dictionary<string, string> Labels(Dictionary<object, object>? map) =>
        map?.ToDictionary(kv => kv.Key.ToString()!, kv => kv.Value?.ToString() ?? "") ?? [];

    /// <summary>Every YAML document of a text (a file or kubectl's output) that is an object.</summary>
    public static IEnumerable<Manifest> Parse(string file, string text)
    {
        var deserializer = new DeserializerBuilder().Build();
        var parser = new Parser(new StringReader(text));
        parser.Consume<StreamStart>();
        while (parser.Accept<DocumentStart>(out _))
        {
            var doc = deserializer.Deserialize<object>(parser);
            if (doc is Dictionary<object, object> root) yield return new Manifest(file, root);
        }
    }
}
