using TorchSharp;

namespace Jetpack.Model.Checkpoints.Pickle;

// The values the restricted unpickler builds. Python None, bool, int, float and str map to
// null, bool, long, double and string; a list is a List<object?>; the rest are below. None of
// these types can execute anything: they are data, and only TorchCheckpoint turns the tensor
// descriptions into torch tensors, after the whole pickle has been checked.

/// <summary>A Python tuple (also what torch.Size unpickles to).</summary>
internal sealed class PickleTuple(object?[] items)
{
    public IReadOnlyList<object?> Items { get; } = items;

    public int Count => Items.Count;
}

/// <summary>
/// A Python dict or OrderedDict: insertion-ordered, keys restricted to str and int (a state
/// dict's keys are str; optimizer state uses int). <see cref="Attributes"/> keeps the state a
/// BUILD opcode attaches (an nn.Module state dict carries "_metadata" that way).
/// </summary>
internal sealed class PickleDict
{
    public OrderedDictionary<object, object?> Items { get; } = new();

    public object? Attributes { get; set; }

    public int Count => Items.Count;
}

/// <summary>What an allow-listed global means; nothing outside this list can be named at all.</summary>
internal enum TorchGlobalKind
{
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    Size,
    /// <summary>A storage class (torch.FloatStorage, ...) or a dtype (torch.float32): names an element type.</summary>
    ElementType,
}

/// <summary>An allow-listed global, resolved from the pickle's module and name.</summary>
internal sealed record PickleGlobal(string Module, string Name, TorchGlobalKind Kind, torch.ScalarType ElementType = default)
{
    public string FullName => $"{Module}.{Name}";
}

/// <summary>
/// A storage as torch's persistent id describes it: ('storage', type, key, location, numel).
/// The bytes live in the archive entry data/<see cref="Key"/>; <see cref="Numel"/> counts
/// elements of <see cref="DType"/>. The location ("cpu", "cuda:0") is kept for messages only:
/// everything loads to the CPU.
/// </summary>
internal sealed record PickledStorage(string Key, torch.ScalarType DType, string Location, long Numel);

/// <summary>
/// A tensor as _rebuild_tensor_v2 describes it: a strided view of a storage, validated to lie
/// inside the storage. Materialised by <see cref="TorchCheckpoint"/> once the pickle is done.
/// </summary>
internal sealed record PickledTensor(PickledStorage Storage, long Offset, long[] Size, long[] Stride, bool RequiresGrad, bool IsParameter)
{
    public long Numel => Size.Aggregate(1L, (n, s) => n * s); // validated not to overflow on construction

    public string Describe() => $"tensor {Storage.DType} [{string.Join(", ", Size)}]";
}
