using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Recycling;

/// <summary>A dense checkpoint as recycling reads it: timm-named tensors and what did not match.</summary>
public sealed class DenseCheckpoint : IDisposable
{
    /// <summary>Prefixes that training frameworks add to timm names (DDP's module., mmpretrain/Lightning's model.).</summary>
    public static readonly string[] Prefixes = ["module.", "model."];

    public required string Path { get; init; }
    public required ModelSpec Spec { get; init; }
    public required Dictionary<string, Tensor> Tensors { get; init; }
    public required LoadReport Report { get; init; }
    /// <summary>Keys present but deliberately unused (the classifier head: recycling never reuses it).</summary>
    public required IReadOnlyList<string> Ignored { get; init; }

    /// <summary>timm name of a key: strips framework prefixes (repeatedly, e.g. model.module.).</summary>
    public static string TimmName(string key)
    {
        for (bool stripped = true; stripped;)
        {
            stripped = false;
            foreach (var p in Prefixes)
                if (key.StartsWith(p, StringComparison.Ordinal)) { key = key[p.Length..]; stripped = true; }
        }
        return key;
    }

    /// <summary>
    /// Reads a .safetensors or .pth/.pt checkpoint and checks it against <paramref name="spec"/>'s state
    /// dict. Strict: a missing, unexpected or mis-shaped key fails with all of them listed and the file
    /// named. The head may differ in shape (e.g. a 21k head) and is ignored.
    /// </summary>
    public static DenseCheckpoint Load(string path, ModelSpec spec, bool strict = true)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint not found: {path}", path);
        var raw = ReadRaw(path);
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (key, t) in raw)
        {
            var name = TimmName(key);
            if (!tensors.TryAdd(name, t))
                throw new InvalidDataException($"{path}: keys '{key}' and another both map to '{name}' after removing prefixes");
        }
        using var skeleton = ModelRegistry.Create(spec, META);
        var ignored = tensors.Keys.Where(DenseStitching.IsHead).Order().ToList();
        var report = LoadReport.Compare(skeleton.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape),
                                        tensors.ToDictionary(kv => kv.Key, kv => kv.Value.shape), spec.Variant, DenseStitching.IsHead);
        if (strict && !report.IsExact)
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw new CheckpointMismatchException(path, $"is not a {spec.Variant} checkpoint: it {report.Describe()}");
        }
        return new DenseCheckpoint { Path = path, Spec = spec, Tensors = tensors, Report = report, Ignored = ignored };
    }

    static Dictionary<string, Tensor> ReadRaw(string path)
    {
        var ext = System.IO.Path.GetExtension(path).ToLowerInvariant();
        if (ext == ".safetensors")
        {
            using var reader = SafetensorsReader.Open(path);
            return reader.ReadAll();
        }
        if (ext is ".pth" or ".pt" or ".bin" or ".ckpt")
            return Checkpoints.Pickle.TorchCheckpoint.LoadStateDict(path);   // restricted unpickler: never runs code
        throw new ArgumentException($"{path}: unknown checkpoint format '{ext}' (expected .safetensors, .pth or .pt)");
    }

    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}
