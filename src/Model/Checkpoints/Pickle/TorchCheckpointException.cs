namespace Jetpack.Model.Checkpoints.Pickle;

/// <summary>
/// A torch.save checkpoint could not be loaded. The message always names the file and, when
/// one state-dict entry is at fault, that key; callers that only care whether a checkpoint is
/// usable catch this base type, callers that alert on tampering catch <see cref="UnsafePickleException"/>.
/// </summary>
public abstract class TorchCheckpointException : Exception
{
    private protected TorchCheckpointException(string filePath, string? key, string problem, Exception? inner)
        : base(Describe(filePath, key, problem), inner)
    {
        FilePath = filePath;
        Key = key;
    }

    /// <summary>The checkpoint file.</summary>
    public string FilePath { get; }

    /// <summary>The state-dict key whose tensor is at fault, or null when the fault is file-wide.</summary>
    public string? Key { get; }

    private static string Describe(string filePath, string? key, string problem) =>
        key is null
            ? $"torch checkpoint '{filePath}': {problem}"
            : $"torch checkpoint '{filePath}', key '{key}': {problem}";
}

/// <summary>The file is not a well-formed torch.save archive, or uses a feature this reader does not support.</summary>
public sealed class TorchCheckpointFormatException : TorchCheckpointException
{
    public TorchCheckpointFormatException(string filePath, string? key, string problem, Exception? inner = null)
        : base(filePath, key, problem, inner)
    {
    }
}

/// <summary>
/// The pickle names a global outside the allow-list (os.system, builtins.eval, ...). Loading it
/// with Python's pickle would import and call that global; here nothing was imported, called or
/// instantiated — the stream was abandoned at the opcode that named it.
/// </summary>
public sealed class UnsafePickleException : TorchCheckpointException
{
    public UnsafePickleException(string filePath, string module, string name, long offset)
        : base(filePath, null, $"data.pkl byte {offset} names the global '{module}.{name}', which is not on the allow-list of a "
                               + "state dict (tensors, storages, OrderedDict); refusing to load a pickle that could run code", null)
    {
        GlobalName = $"{module}.{name}";
    }

    /// <summary>The refused global as "module.name", e.g. "os.system".</summary>
    public string GlobalName { get; }
}
