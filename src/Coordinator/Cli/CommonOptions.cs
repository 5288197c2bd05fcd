using System.CommandLine;
using TorchSharp;

namespace Jetpack.Coordinator.Cli;

/// <summary>Options every compute command shares.</summary>
public static class CommonOptions
{
    public static readonly Option<string> Device = new("--device")
    {
        Description = "torch device: cpu, cuda or cuda:N (default: $JETPACK_DEVICE, else cpu)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("JETPACK_DEVICE") is { Length: > 0 } d ? d : "cpu",
    };

    public static readonly Option<int> Threads = new("--threads")
    {
        Description = "intra-op CPU threads for torch (0 = one per core)",
        DefaultValueFactory = _ => 0,
    };

    public static void ApplyThreads(int threads)
    {
        if (threads < 0) throw new ArgumentException($"--threads must be ≥ 0 (got {threads})");
        torch.set_num_threads(threads > 0 ? threads : Environment.ProcessorCount);
    }
}
