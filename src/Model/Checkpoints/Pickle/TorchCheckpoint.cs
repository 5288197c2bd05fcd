using TorchSharp;

namespace Jetpack.Model.Checkpoints.Pickle;

/// <summary>
/// Loads the state dict of a PyTorch checkpoint (.pth/.pt written by torch.save ≥ 1.6) without
/// Python and without executing the pickle: <see cref="TorchArchive"/> reads the zip,
/// <see cref="RestrictedUnpickler"/> interprets data.pkl against an allow-list, and only then are
/// the described tensors built from the storages.
/// </summary>
public static class TorchCheckpoint
{
    /// <summary>
    /// Top-level keys under which training scripts commonly nest the state dict (timm's train.py
    /// saves "state_dict", DeiT/MAE "model"), tried in this order when the top level holds no tensors.
    /// </summary>
    public static IReadOnlyList<string> NestedStateDictKeys { get; } = ["state_dict", "model", "model_state", "module"];

    /// <summary>The flat state dict of <paramref name="path"/>; see <see cref="Load"/>. The caller owns the tensors.</summary>
    public static Dictionary<string, torch.Tensor> LoadStateDict(string path) => Load(path).StateDict;

    /// <summary>
    /// Loads <paramref name="path"/>. If the top-level dict holds tensors it is the state dict;
    /// otherwise the first of <see cref="NestedStateDictKeys"/> whose value is a dict holding
    /// tensors is unwrapped. Non-tensor values are reported in <see cref="LoadedCheckpoint.OtherKeys"/>.
    /// Cost: each storage is read once; a tensor that is the whole of a storage no other tensor
    /// uses keeps that memory, any other (views, slices, tied weights) is copied out.
    /// </summary>
    /// <exception cref="UnsafePickleException">The pickle names a global outside the allow-list; nothing was executed.</exception>
    /// <exception cref="TorchCheckpointFormatException">The file is not a readable torch.save archive.</exception>
    /// <param name="select">
    /// Given every tensor's key, dtype and shape from the pickle — before any storage is read — returns
    /// the keys to read (it may throw to refuse the file); the others are left out of the state dict
    /// and their bytes are never touched. Null reads every tensor.
    /// </param>
    public static LoadedCheckpoint Load(string path, Func<IReadOnlyList<TensorHeader>, IEnumerable<string>>? select = null)
    {
        using var archive = TorchArchive.Open(path);
        var root = RestrictedUnpickler.Load(archive.ReadPickle(), archive.Path);
        var (tensors, nestedKey, otherKeys) = Select(root, archive.Path);
        if (select is not null)
        {
            var keep = select(tensors.Select(t => new TensorHeader(t.Key, t.Tensor.Storage.DType, (long[])t.Tensor.Size.Clone())).ToList())
                .ToHashSet(StringComparer.Ordinal);
            tensors = tensors.Where(t => keep.Contains(t.Key)).ToList();
        }
        CheckSizes(archive, tensors);
        var stateDict = Materialize(archive, tensors);
        var parameters = tensors.Where(t => t.Tensor.IsParameter).Select(t => t.Key).ToHashSet(StringComparer.Ordinal);
        return new LoadedCheckpoint(stateDict, nestedKey, otherKeys, parameters);
    }

    private static (List<(string Key, PickledTensor Tensor)> Tensors, string? NestedKey, Dictionary<string, string> OtherKeys)
        Select(object? root, string path)
    {
        if (root is not PickleDict top)
            throw new TorchCheckpointFormatException(path, null, $"the saved object is a {PickleText.TypeName(root)}, not a dict; a state dict was expected");

        var source = top;
        string? nestedKey = null;
        if (!top.Items.Values.Any(v => v is PickledTensor))
        {
            foreach (var candidate in NestedStateDictKeys)
            {
                if (top.Items.TryGetValue(candidate, out var value) && value is PickleDict nested && nested.Items.Values.Any(v => v is PickledTensor))
                {
                    (source, nestedKey) = (nested, candidate);
                    break;
                }
            }
        }

        var otherKeys = new Dictionary<string, string>(StringComparer.Ordinal);
        if (nestedKey is not null)
            foreach (var (key, value) in top.Items)
                if (!Equals(key, nestedKey))
                    otherKeys[KeyText(key)] = PickleText.Describe(value);

        var tensors = new List<(string, PickledTensor)>();
        string prefix = nestedKey is null ? "" : nestedKey + ".";
        foreach (var (key, value) in source.Items)
        {
            if (value is not PickledTensor tensor)
                otherKeys[prefix + KeyText(key)] = PickleText.Describe(value);
            else if (key is string name)
                tensors.Add((name, tensor));
            else
                throw new TorchCheckpointFormatException(path, KeyText(key), $"a tensor is stored under the {PickleText.Describe(key)} key; state-dict keys are strings");
        }
        return (tensors, nestedKey, otherKeys);
    }

    /// <summary>
    /// Every size claim, checked before the first allocation: each storage against its zip entry and
    /// the file (<see cref="TorchArchive.CheckStorage"/>), and each tensor against the file — a
    /// zero-stride view of one element can claim terabytes, and materialising it would copy them out.
    /// </summary>
    private static void CheckSizes(TorchArchive archive, List<(string Key, PickledTensor Tensor)> tensors)
    {
        foreach (var (key, tensor) in tensors)
        {
            archive.CheckStorage(tensor.Storage, key);
            long elementSize = SafetensorsDTypes.FromScalarType(tensor.Storage.DType).ElementSize();
            if (tensor.Numel > archive.FileLength / elementSize)
                throw new TorchCheckpointFormatException(archive.Path, key,
                    $"its {tensor.Describe()} view of storage '{tensor.Storage.Key}' needs {tensor.Numel} x {elementSize} bytes, "
                    + $"more than the whole {archive.FileLength}-byte file (a zero-stride view?)");
        }
    }

    private static string KeyText(object key) => key as string ?? PickleText.Describe(key);

    /// <summary>
    /// Builds each tensor from its storage, reading each storage once and disposing it after its
    /// last user, so the peak is the checkpoint's size plus one copied tensor.
    /// </summary>
    private static Dictionary<string, torch.Tensor> Materialize(TorchArchive archive, List<(string Key, PickledTensor Tensor)> tensors)
    {
        var usesLeft = tensors.GroupBy(t => t.Tensor.Storage.Key).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var soleUser = usesLeft.Where(u => u.Value == 1).Select(u => u.Key).ToHashSet(StringComparer.Ordinal);
        var storages = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        var result = new Dictionary<string, torch.Tensor>(tensors.Count, StringComparer.Ordinal);
        try
        {
            foreach (var (key, tensor) in tensors)
            {
                var storageKey = tensor.Storage.Key;
                if (!storages.TryGetValue(storageKey, out var storage))
                    storages.Add(storageKey, storage = archive.ReadStorage(tensor.Storage, key));
                result.Add(key, Rebuild(storage, tensor, soleUser.Contains(storageKey)));
                if (--usesLeft[storageKey] == 0)
                {
                    storages.Remove(storageKey);
                    storage.Dispose(); // a view handed out keeps the memory alive; this only drops our handle
                }
            }
            return result;
        }
        catch
        {
            foreach (var tensor in result.Values)
                tensor.Dispose();
            throw;
        }
        finally
        {
            foreach (var storage in storages.Values)
                storage.Dispose();
        }
    }

    /// <summary>
    /// The tensor as torch would rebuild it — as_strided(size, stride, offset) over the storage —
    /// but contiguous and owning its memory: a whole, exclusively used storage is reshaped in
    /// place (no copy); anything else is copied out (one copy of the tensor's bytes), so no two
    /// returned tensors alias and freeing one frees its memory.
    /// </summary>
    private static torch.Tensor Rebuild(torch.Tensor storage, PickledTensor t, bool soleUser)
    {
        if (t.Numel == 0)
            return torch.empty(t.Size, t.Storage.DType, torch.CPU);
        if (soleUser && t.Offset == 0 && t.Numel == t.Storage.Numel && IsContiguous(t.Size, t.Stride))
            return storage.view(t.Size);
        using var view = storage.as_strided(t.Size, t.Stride, t.Offset);
        var owned = torch.empty(t.Size, t.Storage.DType, torch.CPU);
        owned.copy_(view);
        return owned;
    }

    /// <summary>Row-major strides, ignoring dimensions of size 1 (whose stride never matters), as torch's contiguity test does.</summary>
    private static bool IsContiguous(long[] size, long[] stride)
    {
        long expected = 1;
        for (int d = size.Length - 1; d >= 0; d--)
        {
            if (size[d] != 1 && stride[d] != expected)
                return false;
            expected *= size[d];
        }
        return true;
    }
}
