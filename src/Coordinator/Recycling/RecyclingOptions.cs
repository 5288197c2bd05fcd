namespace Jetpack.Coordinator.Recycling;

/// <summary>Where and how the coordinator recycles checkpoints.</summary>
public sealed class RecyclingOptions
{
    /// <summary>Recycled checkpoints go to &lt;directory&gt;/&lt;key&gt;/model.safetensors (shared storage on a cluster).</summary>
    public string Directory { get; set; } = "";
    /// <summary>torch intra-op threads of the recycling process (0 = one per core).</summary>
    public int Threads { get; set; }
    /// <summary>The jetpack CLI's assembly, run as the recycling child (default: jetpack.dll beside the running program).</summary>
    public string Cli { get; set; } = Path.Combine(AppContext.BaseDirectory, "jetpack.dll");

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Directory)) throw new ArgumentException("recycling directory is required (RecyclingOptions.Directory)");
        if (Threads < 0) throw new ArgumentException($"recycling threads must be ≥ 0, got {Threads}");
    }
}
