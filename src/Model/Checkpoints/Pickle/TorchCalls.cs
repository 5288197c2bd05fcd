namespace Jetpack.Model.Checkpoints.Pickle;

/// <summary>
/// What REDUCE, NEWOBJ, BUILD and BINPERSID mean for the allow-listed globals. Python would call
/// the function; here each allowed call is re-implemented as data construction with its
/// arguments type-checked, so a well-formed but lying pickle (a view past its storage, a
/// negative size) fails with a message instead of reaching torch.
/// </summary>
internal sealed class TorchCalls(PickleInput input)
{
    /// <summary>Generous bound on tensor rank; real checkpoints stay below 10.</summary>
    private const int MaxRank = 64;

    /// <summary>Each storage key must mean the same storage every time it appears (views share keys).</summary>
    private readonly Dictionary<string, PickledStorage> _storages = new(StringComparer.Ordinal);

    /// <summary>REDUCE: <c>callable(*args)</c>.</summary>
    public object? Reduce(object? callable, object? args)
    {
        var global = callable as PickleGlobal ?? throw input.Fail($"REDUCE calls a {PickleText.TypeName(callable)}, not an allow-listed global");
        var a = args as PickleTuple ?? throw input.Fail($"REDUCE's arguments for {global.FullName} are a {PickleText.TypeName(args)}, not a tuple");
        switch (global.Kind)
        {
            case TorchGlobalKind.OrderedDict:
                // OrderedDict's own reduction is OrderedDict() followed by SETITEMS.
                return a.Count == 0 ? new PickleDict() : throw input.Fail("collections.OrderedDict is called with arguments; only OrderedDict() is supported");
            case TorchGlobalKind.Size:
                return a.Count == 1 && a.Items[0] is PickleTuple dims ? dims : throw input.Fail("torch.Size expects one tuple");
            case TorchGlobalKind.RebuildTensorV2:
                return RebuildTensor(a);
            case TorchGlobalKind.RebuildParameter:
            case TorchGlobalKind.RebuildParameterWithState:
                return RebuildParameter(global, a);
            default:
                throw input.Fail($"{global.FullName} is allowed as a value, not as a function to call");
        }
    }

    /// <summary>NEWOBJ: <c>cls.__new__(cls, *args)</c>; only an empty OrderedDict may be created this way.</summary>
    public object? NewObject(object? cls, object? args)
    {
        if (cls is PickleGlobal { Kind: TorchGlobalKind.OrderedDict } && args is PickleTuple { Count: 0 })
            return new PickleDict();
        throw input.Fail($"NEWOBJ of {PickleText.Describe(cls)} is not supported (only an empty OrderedDict)");
    }

    /// <summary>BUILD: <c>obj.__setstate__(state)</c>. A dict's instance attributes are kept; nothing else takes state.</summary>
    public void Build(object? target, object? state)
    {
        if (target is PickleDict dict && state is PickleDict)
            dict.Attributes = state;
        else
            throw input.Fail($"BUILD of a {PickleText.TypeName(target)} with a {PickleText.TypeName(state)} is not supported");
    }

    /// <summary>BINPERSID: torch's persistent id ('storage', storage type, key, location, numel).</summary>
    public PickledStorage PersistentLoad(object? pid)
    {
        if (pid is not PickleTuple { Count: 5 } t || t.Items[0] is not "storage")
            throw input.Fail($"persistent id {PickleText.Describe(pid)} is not ('storage', type, key, location, numel)");
        if (t.Items[1] is not PickleGlobal { Kind: TorchGlobalKind.ElementType } type)
            throw input.Fail($"persistent id names {PickleText.Describe(t.Items[1])} as its storage type");
        if (t.Items[2] is not string { Length: > 0 } key || key.Contains('/') || key.Contains('\\'))
            throw input.Fail($"persistent id has storage key {PickleText.Describe(t.Items[2])}, not a plain name");
        if (t.Items[3] is not string location)
            throw input.Fail($"storage '{key}' has location {PickleText.Describe(t.Items[3])}, not a string");
        if (t.Items[4] is not long numel || numel < 0)
            throw input.Fail($"storage '{key}' has element count {PickleText.Describe(t.Items[4])}");

        var storage = new PickledStorage(key, type.ElementType, location, numel);
        if (!_storages.TryGetValue(key, out var seen))
            _storages.Add(key, storage);
        else if (seen.DType != storage.DType || seen.Numel != storage.Numel)
            throw input.Fail($"storage '{key}' appears as {seen.Numel} x {seen.DType} and as {numel} x {storage.DType}");
        return _storages[key];
    }

    /// <summary>_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).</summary>
    private PickledTensor RebuildTensor(PickleTuple a)
    {
        const string Fn = "_rebuild_tensor_v2";
        if (a.Count is not (6 or 7))
            throw input.Fail($"{Fn} takes 6 or 7 arguments, got {a.Count}");
        var storage = a.Items[0] as PickledStorage ?? throw input.Fail($"{Fn}'s storage is a {PickleText.TypeName(a.Items[0])}");
        long offset = a.Items[1] is long o && o >= 0 ? o : throw input.Fail($"{Fn}'s storage offset is {PickleText.Describe(a.Items[1])}");
        var size = Dims(a.Items[2], Fn, "size");
        var stride = Dims(a.Items[3], Fn, "stride");
        if (stride.Length != size.Length)
            throw input.Fail($"{Fn} has {size.Length} sizes but {stride.Length} strides");
        bool requiresGrad = a.Items[4] is bool r ? r : throw input.Fail($"{Fn}'s requires_grad is {PickleText.Describe(a.Items[4])}");
        // Backward hooks cannot be anything but an empty OrderedDict here: hook functions are globals, which the allow-list refuses.
        if (a.Items[5] is not PickleDict)
            throw input.Fail($"{Fn}'s backward hooks are {PickleText.Describe(a.Items[5])}");
        // Newer torch appends a metadata dict only when a tensor has flags beyond its storage view;
        // silently dropping one could change values, so a non-empty one is refused.
        if (a.Count == 7 && a.Items[6] is not (null or PickleDict { Count: 0 }))
            throw input.Fail($"{Fn}'s tensor metadata {PickleText.Describe(a.Items[6])} is not supported");
        CheckInsideStorage(storage, offset, size, stride);
        return new PickledTensor(storage, offset, size, stride, requiresGrad, IsParameter: false);
    }

    /// <summary>_rebuild_parameter(data, requires_grad, backward_hooks) and the _with_state variant (extra Python attributes, dropped).</summary>
    private PickledTensor RebuildParameter(PickleGlobal global, PickleTuple a)
    {
        int expected = global.Kind == TorchGlobalKind.RebuildParameter ? 3 : 4;
        if (a.Count != expected)
            throw input.Fail($"{global.Name} takes {expected} arguments, got {a.Count}");
        var data = a.Items[0] as PickledTensor ?? throw input.Fail($"{global.Name}'s data is {PickleText.Describe(a.Items[0])}, not a tensor");
        bool requiresGrad = a.Items[1] is bool r ? r : throw input.Fail($"{global.Name}'s requires_grad is {PickleText.Describe(a.Items[1])}");
        if (a.Items[2] is not PickleDict)
            throw input.Fail($"{global.Name}'s backward hooks are {PickleText.Describe(a.Items[2])}");
        return data with { RequiresGrad = requiresGrad, IsParameter = true };
    }

    private long[] Dims(object? value, string fn, string what)
    {
        if (value is not PickleTuple t)
            throw input.Fail($"{fn}'s {what} is {PickleText.Describe(value)}, not a tuple");
        if (t.Count > MaxRank)
            throw input.Fail($"{fn}'s {what} has {t.Count} dimensions, more than {MaxRank}");
        var dims = new long[t.Count];
        for (int i = 0; i < dims.Length; i++)
            dims[i] = t.Items[i] is long d && d >= 0 ? d : throw input.Fail($"{fn}'s {what}[{i}] is {PickleText.Describe(t.Items[i])}");
        return dims;
    }

    /// <summary>
    /// The view must address only elements of the storage: offset + Σ (size_i − 1)·stride_i &lt; numel
    /// (strides are non-negative, so that is the last element). Checked arithmetic: a lying size
    /// overflows into an error, not into a wrapped index that torch would trust.
    /// </summary>
    private void CheckInsideStorage(PickledStorage storage, long offset, long[] size, long[] stride)
    {
        try
        {
            // extent: the bytes torch addresses when it lays the sizes out contiguously, zero dims
            // counted as 1 (as torch computes strides): [0, 2^62, 4] holds nothing yet overflows there.
            long numel = 1, last = offset, extent = SafetensorsDTypes.FromScalarType(storage.DType).ElementSize();
            for (int i = 0; i < size.Length; i++)
            {
                numel = checked(numel * size[i]);
                extent = checked(extent * Math.Max(size[i], 1));
                if (size[i] > 0)
                    last = checked(last + (size[i] - 1) * stride[i]);
            }
            if (numel > 0 && last >= storage.Numel)
                throw input.Fail($"a [{string.Join(", ", size)}] view with strides [{string.Join(", ", stride)}] at offset {offset} "
                                 + $"reaches element {last} of storage '{storage.Key}', which has {storage.Numel}");
        }
        catch (OverflowException e)
        {
            throw input.Fail($"the tensor's size [{string.Join(", ", size)}] or strides overflow 64 bits", e);
        }
    }
}
