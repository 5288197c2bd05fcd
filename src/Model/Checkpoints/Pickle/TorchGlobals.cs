using TorchSharp;

namespace Jetpack.Model.Checkpoints.Pickle;

/// <summary>
/// The allow-list: the only globals a state-dict pickle may name, and what each one means.
/// Resolution is a table lookup, never an import, so a name outside this table cannot reach
/// any code — the unpickler throws <see cref="UnsafePickleException"/> at the GLOBAL opcode.
/// </summary>
internal static class TorchGlobals
{
    private static readonly Dictionary<(string Module, string Name), PickleGlobal> Allowed = Build();

    /// <summary>The allow-listed global, or null when the name is not on the list.</summary>
    public static PickleGlobal? Resolve(string module, string name) =>
        Allowed.TryGetValue((module, name), out var global) ? global : null;

    /// <summary>Every allow-listed name, for tests and documentation.</summary>
    public static IEnumerable<string> Names => Allowed.Values.Select(g => g.FullName);

    private static Dictionary<(string, string), PickleGlobal> Build()
    {
        var table = new Dictionary<(string, string), PickleGlobal>();
        void Add(string module, string name, TorchGlobalKind kind, torch.ScalarType type = default) =>
            table.Add((module, name), new PickleGlobal(module, name, kind, type));

        Add("collections", "OrderedDict", TorchGlobalKind.OrderedDict);
        Add("torch._utils", "_rebuild_tensor_v2", TorchGlobalKind.RebuildTensorV2);
        Add("torch._utils", "_rebuild_parameter", TorchGlobalKind.RebuildParameter);
        Add("torch._utils", "_rebuild_parameter_with_state", TorchGlobalKind.RebuildParameterWithState);
        Add("torch", "Size", TorchGlobalKind.Size);

        // Legacy typed storage classes: torch.save names these in every persistent id, for CPU
        // and CUDA tensors alike (the device is the id's location string, not the class).
        foreach (var (name, type) in new (string, torch.ScalarType)[]
                 {
                     ("FloatStorage", torch.ScalarType.Float32), ("HalfStorage", torch.ScalarType.Float16),
                     ("BFloat16Storage", torch.ScalarType.BFloat16), ("DoubleStorage", torch.ScalarType.Float64),
                     ("LongStorage", torch.ScalarType.Int64), ("IntStorage", torch.ScalarType.Int32),
                     ("ShortStorage", torch.ScalarType.Int16), ("CharStorage", torch.ScalarType.Int8),
                     ("ByteStorage", torch.ScalarType.Byte), ("BoolStorage", torch.ScalarType.Bool),
                 })
            Add("torch", name, TorchGlobalKind.ElementType, type);

        // torch 2.x: an untyped storage is bytes; its numel counts bytes.
        Add("torch", "UntypedStorage", TorchGlobalKind.ElementType, torch.ScalarType.Byte);
        Add("torch.storage", "UntypedStorage", TorchGlobalKind.ElementType, torch.ScalarType.Byte);

        // dtype objects, which torch 2.x may put where a storage class used to be.
        foreach (var (names, type) in new (string[], torch.ScalarType)[]
                 {
                     (["float32", "float"], torch.ScalarType.Float32), (["float16", "half"], torch.ScalarType.Float16),
                     (["bfloat16"], torch.ScalarType.BFloat16), (["float64", "double"], torch.ScalarType.Float64),
                     (["int64", "long"], torch.ScalarType.Int64), (["int32", "int"], torch.ScalarType.Int32),
                     (["int16", "short"], torch.ScalarType.Int16), (["int8"], torch.ScalarType.Int8),
                     (["uint8"], torch.ScalarType.Byte), (["bool"], torch.ScalarType.Bool),
                 })
            foreach (var name in names)
                Add("torch", name, TorchGlobalKind.ElementType, type);
        return table;
    }
}
