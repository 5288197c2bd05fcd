using System.Text.Json;
using Jetpack.Application.Runs;
using Jetpack.Coordinator.Jobs;

namespace Jetpack.Coordinator.Recycling;

/// <summary>
/// What the coordinator's recycle child is given (<c>jetpack recycle --task FILE</c>): the job's
/// validated recycle recipe as one JSON file in the spec dialect (<see cref="SpecJson"/>), not spelled
/// out again as command-line options and read back.
/// </summary>
public sealed record RecycleTask
{
    /// <summary>The successor: a registry name or a model mapping as JSON (ModelArgument).</summary>
    public required string Model { get; init; }
    public required RecycleSpec Recycle { get; init; }
    /// <summary>The MoE checkpoint to write (.safetensors); the report and index sets go beside it.</summary>
    public required string Out { get; init; }
    /// <summary>Torch threads of the child (0: its default).</summary>
    public int Threads { get; init; }

    public const string FileName = "recycle.json";

    public string ToJson() => JsonSerializer.Serialize(this, SpecJson.Options);

    /// <summary>Reads a task file; a malformed one is refused naming the file and field.</summary>
    public static RecycleTask Read(string path) =>
        JobSpecReader.ParseAs<RecycleTask>(JobSpecReader.ReadText(path), "json", path, "model, recycle, out, threads");
}
