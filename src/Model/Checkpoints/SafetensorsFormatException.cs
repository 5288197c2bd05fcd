namespace Jetpack.Model.Checkpoints;

/// <summary>
/// A safetensors file breaks the format. The message always names the file and, when one tensor
/// is at fault, that tensor, so a bad shard in a directory of hundreds can be found from the log.
/// </summary>
public sealed class SafetensorsFormatException : Exception
{
    public SafetensorsFormatException(string filePath, string? tensorName, string problem, Exception? inner = null)
        : base(Describe(filePath, tensorName, problem), inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The file that is malformed.</summary>
    public string FilePath { get; }

    /// <summary>The tensor whose entry or data is at fault, or null when the fault is file-wide.</summary>
    public string? TensorName { get; }

    private static string Describe(string filePath, string? tensorName, string problem) =>
        tensorName is null
            ? $"safetensors file '{filePath}': {problem}"
            : $"safetensors file '{filePath}', tensor '{tensorName}': {problem}";
}
