namespace Jetpack.Application.Runs;

/// <summary>An invalid run or job spec (the one spec error type: RunSpec, JobSpec, the job reader and validator): names the source (a file) and the field at fault (a user error: exit 2).</summary>
public sealed class RunSpecException(string source, string field, string problem)
    : ArgumentException($"{source}: {field}: {problem}")
{
    public string SpecSource { get; } = source;
    public string Field { get; } = field;
    public string Problem { get; } = problem;
}
