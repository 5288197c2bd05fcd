using TorchSharp;

namespace Jetpack.Model.Torch;

/// <summary>
/// The device is configuration: every entry point takes a device string ("cpu", "cuda", "cuda:1")
/// and nothing in the model assumes CPU.
/// </summary>
public static class Devices
{
    /// <summary>Parses a device string, failing with a message that names the bad value.</summary>
    public static torch.Device Parse(string spec)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        torch.Device device;
        try
        {
            device = torch.device(spec);
        }
        catch (Exception e)
        {
            throw new ArgumentException($"device '{spec}' is not a torch device (expected cpu, cuda or cuda:N): {e.Message}", e);
        }
        if (device.type == DeviceType.CUDA && !torch.cuda.is_available())
            throw new ArgumentException($"device '{spec}': CUDA is not available in this build or on this machine " +
                                        "(build with JetpackTorchBackend=cuda on a machine with a GPU)");
        return device;
    }
}
