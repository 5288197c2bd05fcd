namespace Jetpack.Coordinator.Tests.Support;

/// <summary>Files of the repository the tests check (deploy/, scripts/), found from the test binaries upwards.</summary>
public static class RepoPaths
{
    public static string Root()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (System.IO.File.Exists(Path.Combine(d.FullName, "Distributed.sln"))) return d.FullName;
        throw new DirectoryNotFoundException($"no Distributed.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>A path under the repository root, e.g. <c>File("deploy", "grafana", "jetpack-dashboard.json")</c>.</summary>
    public static string File(params string[] parts) => Path.Combine([Root(), .. parts]);
}
