using System.CommandLine;
using TorchSharp;
using Jetpack.Protocol.Channels;

namespace Jetpack.Cli.CommandLine;

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

    public static readonly Option<string> DataPlane = new("--data-plane")
    {
        Description = "how worker processes send token slots and gradient chunks to each other: tcp (default: the checked data-plane headers on raw TCP), " +
                      "grpc (HTTP/2 Push streams; measured at 32 % of tcp between two network namespaces, docs/measured/data-plane/, so not the default) " +
                      "or grpc-pull (the same gRPC frames, the receiver pulling them as a server stream: faster than grpc on .NET's HTTP/2)",
        DefaultValueFactory = _ => Jetpack.Protocol.Channels.DataPlaneTransports.Default.Name(),
    };

    public static Jetpack.Protocol.Channels.DataPlaneTransport ParseDataPlane(string text) => Jetpack.Protocol.Channels.DataPlaneTransports.Parse(text, "--data-plane");

    public static void ApplyThreads(int threads)
    {
        if (threads < 0) throw new ArgumentException($"--threads must be ≥ 0 (got {threads})");
        torch.set_num_threads(threads > 0 ? threads : Environment.ProcessorCount);
    }
}
