using static TorchSharp.torch;

namespace Jetpack.Model.Checkpoints;

/// <summary>What a state-dict load found: keys the model has but the file lacks, keys the file has
/// but the model lacks, and keys whose shapes (or kinds of dtype) differ.</summary>
public sealed record LoadReport(IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected, IReadOnlyList<string> MisShaped)
{
    public bool IsExact => Missing.Count == 0 && Unexpected.Count == 0 && MisShaped.Count == 0;

    /// <summary>
    /// Compares what a model expects with what a file's header holds, key by key; keys for which
    /// <paramref name="ignore"/> holds are left out of all three lists. Decided from headers only:
    /// nothing here reads tensor data.
    /// </summary>
    public static LoadReport Compare(IReadOnlyDictionary<string, TensorHeader> model, IReadOnlyDictionary<string, TensorHeader> file,
                                     string modelName, Func<string, bool>? ignore = null)
    {
        bool Kept(string k) => ignore is null || !ignore(k);
        static string Shape(long[] s) => $"[{string.Join(", ", s)}]";
        string Difference(TensorHeader m, TensorHeader f) => m.Shape.SequenceEqual(f.Shape)
            ? $"{m.Name}: file {f.DType} {Shape(f.Shape)}, {modelName} {m.DType} {Shape(m.Shape)}"
            : $"{m.Name}: file {Shape(f.Shape)}, {modelName} {Shape(m.Shape)}";
        return new LoadReport(
            model.Keys.Where(k => !file.ContainsKey(k) && Kept(k)).ToList(),
            file.Keys.Where(k => !model.ContainsKey(k) && Kept(k)).ToList(),
            model.Where(kv => Kept(kv.Key) && file.TryGetValue(kv.Key, out var f) && !Fits(kv.Value, f))
                 .Select(kv => Difference(kv.Value with { Name = kv.Key }, file[kv.Key])).ToList());
    }

    /// <summary>
    /// True when the file's tensor can be copied into the model's: the same shape, and both floating
    /// point or both not (bf16 → f32 is a conversion; integers into a weight are a different tensor).
    /// </summary>
    public static bool Fits(TensorHeader model, TensorHeader file) =>
        model.Shape.SequenceEqual(file.Shape) && IsFloat(model.DType) == IsFloat(file.DType);

    static bool IsFloat(ScalarType t) => t is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64;

    public string Describe()
    {
        static string List(string title, IReadOnlyList<string> xs) =>
            xs.Count == 0 ? "" : $"\n  {title} ({xs.Count}): {string.Join(", ", xs.Take(20))}{(xs.Count > 20 ? $", … {xs.Count - 20} more" : "")}";
        return "does not match the model:" + List("missing", Missing) + List("unexpected", Unexpected) + List("mis-shaped", MisShaped);
    }
}
