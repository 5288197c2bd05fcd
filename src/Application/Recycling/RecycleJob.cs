using Jetpack.Model.Recycling;

namespace Jetpack.Application.Recycling;

/// <summary>
/// One recycling run as data (what <c>jetpack recycle</c>'s options describe): the sources, the
/// recipe, where activation statistics come from, and the outputs. Paths are as given; the
/// pipeline resolves and checks them before any work.
/// </summary>
public sealed record RecycleJob
{
    /// <summary>The MoE successor to build: a registry name or a request with its expert configuration (<see cref="Jetpack.Model.Registry.ModelRequest"/>).</summary>
    public required Jetpack.Model.Registry.ModelRequest Successor { get; init; }
    /// <summary>The dense predecessor: the experts' source.</summary>
    public required string From { get; init; }
    /// <summary>Default: the successor's recipe (<see cref="RecyclingRecipes"/>).</summary>
    public string? FromVariant { get; init; }
    /// <summary>Target-width dense checkpoint: every non-expert weight (spec §5.6).</summary>
    public string? Target { get; init; }
    public string? TargetVariant { get; init; }
    public RecycleOptions Options { get; init; } = new();
    /// <summary>Saved activation statistics; exclusive with <see cref="Profiler"/>.</summary>
    public string? Stats { get; init; }
    /// <summary>Profiles the predecessor when statistics are needed and not given.</summary>
    public StatsProfiler? Profiler { get; init; }
    /// <summary>Also collect co-activation counts (always collected for the graph method).</summary>
    public bool CoActivation { get; init; }
    /// <summary>Where to save statistics this run profiled (only written when it profiles).</summary>
    public string? SaveStats { get; init; }
    public required string Out { get; init; }
    /// <summary>Default: &lt;out&gt;.report.json.</summary>
    public string? Report { get; init; }
    /// <summary>Default: &lt;out&gt;.indices.safetensors.</summary>
    public string? Indices { get; init; }

    public string ReportPath => Report ?? Path.ChangeExtension(Out, ".report.json");
    public string IndicesPath => Indices ?? Path.ChangeExtension(Out, ".indices.safetensors");
}

/// <summary>What profiling must collect for a recipe: a pass over the predecessor's activations on some images.</summary>
public sealed record ProfileRequest(Jetpack.Model.Models.ModelSpec Predecessor, DenseCheckpoint Checkpoint, long Seed,
                                    ISet<string>? CoActivationSites, StatKinds Kinds, bool AttentionInputs);

/// <summary>Profiles the predecessor (the images and device are the caller's: a CLI option set, the study's plan).</summary>
public delegate ActivationStats StatsProfiler(ProfileRequest request);

/// <summary>A file the pipeline reads or writes, with the option (or role) that named it, for error messages.</summary>
public sealed record NamedPath(string Name, string Path);

/// <summary>The three files a recycled checkpoint consists of.</summary>
public sealed record RecycleOutputs(string Model, string Indices, string Report)
{
    /// <summary>The defaults <c>jetpack recycle</c> uses beside a model path.</summary>
    public static RecycleOutputs Beside(string model) =>
        new(model, Path.ChangeExtension(model, ".indices.safetensors"), Path.ChangeExtension(model, ".report.json"));
}
