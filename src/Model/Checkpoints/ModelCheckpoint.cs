using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Distributed;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Model.Checkpoints;

/// <summary>
/// A model checkpoint: the state dict in safetensors with the model's identity in
/// <c>__metadata__</c> — format version, variant, architecture config (JSON) and the expert counts
/// of every MoE layer (as tutel and nanoGPT do). Loading refuses a mismatch and lists missing,
/// unexpected and mis-shaped keys.
/// </summary>
public static class ModelCheckpoint
{
    public const int FormatVersion = 1;
    public const string FormatKey = "jetpack.format_version";
    public const string VariantKey = "jetpack.variant";
    public const string ArchitectureKey = "jetpack.architecture";
    public const string ConfigKey = "jetpack.config";
    public const string ExpertsKey = "jetpack.experts";
    /// <summary>The model's parameter count (informational: printed by eval and export; not compared on load).</summary>
    public const string ParametersKey = "jetpack.parameters";

    /// <summary>Writes the module's state dict and identity atomically (temp file + rename).</summary>
    public static void Save(string path, ModelSpec spec, nn.Module model, IReadOnlyDictionary<string, string>? extra = null)
    {
        var metadata = new Dictionary<string, string>(IdentityOf(spec))
        {
            [ParametersKey] = ModelRegistry.ParameterCount(model).ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (extra is not null)
            foreach (var (k, v) in extra)
                if (!metadata.TryAdd(k, v)) throw new ArgumentException($"extra metadata key '{k}' collides with a reserved key");
        SafetensorsWriter.Write(path, model.state_dict(), metadata);
    }

    /// <summary>The metadata that identifies a model: what a checkpoint must agree with to load.</summary>
    public static IReadOnlyDictionary<string, string> IdentityOf(ModelSpec spec) => new Dictionary<string, string>
    {
        [FormatKey] = FormatVersion.ToString(),
        [VariantKey] = spec.Variant,
        [ArchitectureKey] = spec.Architecture,
        [ConfigKey] = spec.ConfigJson(),
        [ExpertsKey] = ExpertSummary(spec),
    };

    /// <summary>"blocks.6.mlp=98+196x1;…": every MoE layer with its core+universal experts × slots.</summary>
    public static string ExpertSummary(ModelSpec spec) =>
        string.Join(';', spec.MoeLayers().Select(l => $"{l.Prefix}={l.Moe.CoreExperts}+{l.Moe.UniversalExperts}x{l.Moe.SlotsPerExpert}"));

    /// <summary>Reads the spec a checkpoint was saved with.</summary>
    public static ModelSpec ReadSpec(string path)
    {
        using var reader = Open(path);
        return ReadSpec(reader);
    }

    static ModelSpec ReadSpec(SafetensorsReader reader)
    {
        string Get(string key) => reader.Metadata.TryGetValue(key, out var v) ? v
            : throw new InvalidDataException($"{reader.Path}: not a Jetpack model checkpoint (metadata '{key}' is missing)");
        if (Get(FormatKey) != FormatVersion.ToString())
            throw new InvalidDataException($"{reader.Path}: checkpoint format version {Get(FormatKey)}, this build reads {FormatVersion}");
        try { return ModelSpec.FromConfig(Get(VariantKey), Get(ArchitectureKey), Get(ConfigKey)); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{reader.Path}: metadata '{ArchitectureKey}': {e.Message}", e); }
        catch (JsonException e) { throw new InvalidDataException($"{reader.Path}: metadata '{ConfigKey}' is not a valid config: {e.Message}", e); }
    }

    /// <summary>Builds the model a checkpoint describes and loads it strictly.</summary>
    public static (ModelSpec Spec, nn.Module<Tensor, Tensor> Model) LoadModel(string path, Device? device = null)
    {
        using var reader = Open(path);
        var spec = ReadSpec(reader);
        nn.Module<Tensor, Tensor> model;
        using (Layers.Init.Deferred()) model = ModelRegistry.Create(spec, device);      // the strict load overwrites every tensor
        LoadWeights(reader, model, strict: true);
        return (spec, model);
    }

    /// <summary>
    /// Loads a checkpoint into a model built from <paramref name="spec"/>. The file must fit the
    /// model (<see cref="ArchitectureFit"/>: names, shapes, routing structure; regularisation is not
    /// compared), and every key must match. When only the class count differs (a recycled
    /// checkpoint with the default head, fine-tuned on a dataset with other classes), the head keeps
    /// the model's fresh initialisation and every other tensor loads strictly; the returned warning
    /// names both counts. Returns null when nothing needs saying.
    /// </summary>
    public static string? Load(string path, ModelSpec spec, nn.Module model)
    {
        using var reader = Open(path);
        var fit = ArchitectureFit.Compare(ReadSpec(reader), spec);
        if (fit.Fits)
        {
            LoadWeights(reader, model, strict: true);
            return null;
        }
        if (!fit.HeadOnly) throw new CheckpointMismatchException(path, fit.Describe());
        LoadWeights(reader, model, strict: true, skip: key => ArchitectureFit.IsHeadKey(spec, key));
        return $"{path}: the head was saved for {fit.FileClasses} classes, the model has {fit.ModelClasses}: head re-initialised, every other weight loaded";
    }

    /// <summary>
    /// A model file opened as safetensors; a torch.save file (told by its magic bytes, whatever its
    /// name) is refused with what to do instead — it carries no model identity to check.
    /// </summary>
    static SafetensorsReader Open(string path)
    {
        var fullPath = CheckpointFile.CheckReadable(path, (full, problem) => new SafetensorsFormatException(full, null, problem));
        if (CheckpointFile.Sniff(fullPath) is CheckpointFormat.TorchZip or CheckpointFormat.TorchLegacy)
            throw new SafetensorsFormatException(fullPath, null,
                "is a PyTorch .pth file (torch.save), not a Jetpack model checkpoint: `init:` and model loads expect safetensors with the "
                + "model's identity in its metadata, as `jetpack recycle` and `jetpack train` write (`jetpack recycle --from/--target` read dense .pth files as they are)");
        return SafetensorsReader.Open(fullPath);
    }

    /// <summary>
    /// Copies tensors by state-dict name into the model (dtype converted, device kept). Names, shapes
    /// and dtypes are compared from the header first; only tensors that fit are read, so an
    /// unexpected or mis-shaped one costs no I/O. Strict: any missing, unexpected or mis-shaped key
    /// fails with all three lists before anything is read; non-strict returns them.
    /// </summary>
    /// <param name="skip">keys left as the model has them (neither compared nor read): a re-initialised head</param>
    public static LoadReport LoadWeights(SafetensorsReader reader, nn.Module model, bool strict, Func<string, string>? rename = null,
                                         Func<string, bool>? skip = null)
    {
        var target = model.state_dict();
        var sourceNames = reader.Names.ToDictionary(n => rename?.Invoke(n) ?? n, n => n);
        var file = sourceNames.ToDictionary(kv => kv.Key, kv => reader.GetHeader(kv.Value) with { Name = kv.Key });
        var expected = target.ToDictionary(kv => kv.Key, kv => new TensorHeader(kv.Key, kv.Value.dtype, kv.Value.shape));
        var report = LoadReport.Compare(expected, file, "model", skip);
        if (strict && !report.IsExact) throw new CheckpointMismatchException(reader.Path, report.Describe());

        using var _ = no_grad();
        foreach (var (key, tensor) in target)
        {
            if (skip?.Invoke(key) == true || !file.TryGetValue(key, out var header) || !LoadReport.Fits(expected[key], header)) continue;   // reported above
            var name = sourceNames[key];
            using var loaded = reader.ReadTensor(name, tensor.device);
            tensor.copy_(loaded);
        }
        return report;
    }

    /// <summary>
    /// One rank's part of a full model checkpoint (the coordinator's scatter): replicated tensors whole,
    /// expert tensors as the rows of position <paramref name="rank"/> of an expert group of
    /// <paramref name="world"/>; read a tensor at a time, each disposed when the consumer moves on.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, Tensor>> ReadRank(string path, ModelSpec model, int world, int rank)
    {
        using var reader = SafetensorsReader.Open(path);
        foreach (var name in reader.Names)
        {
            Tensor t;
            if (ExpertKeys.Classify(model, name) is { } ek)
            {
                var (start, count) = ek.Rows(ExpertRange.For(ek.Config, world, rank));
                t = reader.ReadRows(name, start, count);                               // only this rank's experts
            }
            else t = reader.ReadTensor(name);
            try { yield return new(name, t); }
            finally { t.Dispose(); }
        }
    }
}

/// <summary>A checkpoint that does not fit the model it is loaded into; the message names the file.</summary>
public sealed class CheckpointMismatchException(string path, string problem) : Exception($"{path}: checkpoint {problem}")
{
    public string FilePath { get; } = path;
}
