namespace Jetpack.Protocol.Control;

/// <summary>The line a worker prints on stdout once it serves gRPC (the launcher's readiness signal).</summary>
public static class WorkerReadiness
{
    public const string Prefix = "jetpack-worker ready";

    /// <summary>The value of <c>name=value</c> in a readiness line, or null.</summary>
    public static string? Field(string line, string name) =>
        line.Split(' ').Where(w => w.StartsWith(name + "=", StringComparison.Ordinal)).Select(w => w[(name.Length + 1)..]).FirstOrDefault();
}
