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
    /// Reads a safetensors or torch.save checkpoint (told apart by magic bytes; the extension only
    /// names what was expected of a damaged file) and checks it against <paramref name="spec"/>'s
    /// state dict from the header or pickle first: names, shapes and dtypes are compared before any
    /// tensor data is read, and only tensors that fit the model are read at all. Strict: a missing,
    /// unexpected or mis-shaped key fails with all of them listed and the file named, having read
    /// nothing. The head may differ in shape (e.g. a 21k head): it is ignored, and read only if it fits.
    /// </summary>
    public static DenseCheckpoint Load(string path, ModelSpec spec, bool strict = true)
    {
        var fullPath = CheckpointFile.CheckReadable(path, (full, problem) => new InvalidDataException($"checkpoint '{full}' {problem}"));
        Dictionary<string, TensorHeader> expected;
        using (var skeleton = ModelRegistry.Create(spec, META))
            expected = skeleton.state_dict().ToDictionary(kv => kv.Key, kv => new TensorHeader(kv.Key, kv.Value.dtype, kv.Value.shape));
        LoadReport? report = null;
        List<string> ignored = [];

        // Called with the file's headers before any data is read; returns the raw keys worth reading.
        IEnumerable<string> Choose(IReadOnlyList<TensorHeader> headers)
        {
            var byName = new Dictionary<string, TensorHeader>(StringComparer.Ordinal);
            var rawKey = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var header in headers)
            {
                var name = TimmName(header.Name);
                if (!byName.TryAdd(name, header with { Name = name }))
                    throw new InvalidDataException($"{fullPath}: keys '{rawKey[name]}' and '{header.Name}' both map to '{name}' after removing prefixes");
                rawKey[name] = header.Name;
            }
            ignored = byName.Keys.Where(DenseStitching.IsHead).Order().ToList();
            report = LoadReport.Compare(expected, byName, spec.Variant, DenseStitching.IsHead);
            if (strict && !report.IsExact)
                throw new CheckpointMismatchException(fullPath, $"is not a {spec.Variant} checkpoint: it {report.Describe()}");
            return byName.Where(kv => expected.TryGetValue(kv.Key, out var m) && LoadReport.Fits(m, kv.Value)).Select(kv => rawKey[kv.Key]).ToList();
        }

        var tensors = ReadRaw(fullPath, Choose).ToDictionary(kv => TimmName(kv.Key), kv => kv.Value);
        return new DenseCheckpoint { Path = path, Spec = spec, Tensors = tensors, Report = report!, Ignored = ignored };
    }

    /// <summary>The chosen tensors of the file, read by the reader its magic bytes call for.</summary>
    static Dictionary<string, Tensor> ReadRaw(string path, Func<IReadOnlyList<TensorHeader>, IEnumerable<string>> choose)
    {
        var format = CheckpointFile.Sniff(path);
        var ext = System.IO.Path.GetExtension(path).ToLowerInvariant();
        if (format == CheckpointFormat.Unknown && ext == ".safetensors" || format == CheckpointFormat.Safetensors)
        {
            using var reader = SafetensorsReader.Open(path);
            var keep = choose(reader.Names.Select(reader.GetHeader).ToList());
            var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            try
            {
                foreach (var name in keep)
                    tensors.Add(name, reader.ReadTensor(name));
                return tensors;
            }
            catch
            {
                foreach (var t in tensors.Values) t.Dispose();
                throw;
            }
        }
        if (format is CheckpointFormat.TorchZip or CheckpointFormat.TorchLegacy || ext is ".pth" or ".pt" or ".bin" or ".ckpt")
            return Checkpoints.Pickle.TorchCheckpoint.Load(path, choose).StateDict;   // restricted unpickler: never runs code
        throw new ArgumentException($"{path}: unknown checkpoint format '{ext}' (neither safetensors nor a torch.save file by its first bytes; expected .safetensors, .pth or .pt)");
    }

    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}
