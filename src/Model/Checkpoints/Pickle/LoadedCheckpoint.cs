using TorchSharp;

namespace Jetpack.Model.Checkpoints.Pickle;

/// <summary>
/// A loaded torch.save checkpoint: the flat state dict (keys exactly as saved — a "module."
/// prefix from DataParallel is left for the caller's key mapping to strip), where it was found,
/// and what else the file held.
/// </summary>
public sealed class LoadedCheckpoint : IDisposable
{
    internal LoadedCheckpoint(Dictionary<string, torch.Tensor> stateDict, string? nestedKey,
                              IReadOnlyDictionary<string, string> otherKeys, IReadOnlySet<string> parameterKeys)
    {
        StateDict = stateDict;
        NestedKey = nestedKey;
        OtherKeys = otherKeys;
        ParameterKeys = parameterKeys;
    }

    /// <summary>Contiguous CPU tensors that own their memory (no two share storage), with requires_grad false. The caller owns them.</summary>
    public Dictionary<string, torch.Tensor> StateDict { get; }

    /// <summary>The top-level key the state dict was unwrapped from ("state_dict", "model", ...), or null if the file is the state dict itself.</summary>
    public string? NestedKey { get; }

    /// <summary>
    /// Every entry not returned as a tensor, with a short description ("int 3", "str 'adamw'",
    /// "dict (12 entries)"). Entries of the unwrapped dict are named "&lt;nested key&gt;.&lt;key&gt;".
    /// </summary>
    public IReadOnlyDictionary<string, string> OtherKeys { get; }

    /// <summary>The state-dict keys that were saved as nn.Parameter (the rest were plain tensors or buffers).</summary>
    public IReadOnlySet<string> ParameterKeys { get; }

    /// <summary>Disposes every tensor of <see cref="StateDict"/>.</summary>
    public void Dispose()
    {
        foreach (var tensor in StateDict.Values)
            tensor.Dispose();
    }
}
