using TorchSharp;

namespace Jetpack.Model.Checkpoints;

/// <summary>
/// What a checkpoint says about one tensor before any of its bytes are read: the safetensors
/// header entry or the torch pickle's _rebuild_tensor_v2 call. Loaders decide from these which
/// tensors to read at all, so an unexpected or mis-shaped tensor costs nothing.
/// </summary>
public sealed record TensorHeader(string Name, torch.ScalarType DType, long[] Shape)
{
    public override string ToString() => $"{Name}: {DType} [{string.Join(", ", Shape)}]";
}
