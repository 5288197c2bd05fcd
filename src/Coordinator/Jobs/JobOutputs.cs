using Jetpack.Application.Runs;
namespace Jetpack.Coordinator.Jobs;

/// <summary>
/// Where a job writes (issue 12): its <c>out</c> lies inside the coordinator's data directory. A
/// relative <c>out</c> is relative to that directory; the default is <c>&lt;data dir&gt;/jobs/&lt;job id&gt;</c>.
/// The check runs on the path with <c>..</c> and existing symbolic links resolved, so neither
/// <c>../../etc</c> nor a link inside the data directory can point a job's files elsewhere.
/// </summary>
public static class JobOutputs
{
    /// <summary>The job's output directory, absolute; a path that escapes <paramref name="dataDirectory"/> throws
    /// a <see cref="RunSpecException"/> naming the field <c>out</c> (or <c>job_id</c> for the default).</summary>
    public static string Resolve(string? output, string jobId, string dataDirectory, string source)
    {
        string root = Path.GetFullPath(dataDirectory);
        string field = string.IsNullOrEmpty(output) ? "job_id" : "out";
        string path = string.IsNullOrEmpty(output) ? Path.Combine(root, "jobs", jobId) : Path.GetFullPath(output, root);
        if (!Inside(Real(path), Real(root)))
            throw new RunSpecException(source, field, $"'{output ?? jobId}' resolves to {path}, outside the coordinator's data directory {root}: a job writes only inside it (a relative out is relative to it)");
        return path;
    }

    static bool Inside(string path, string root)
    {
        string r = Path.TrimEndingDirectorySeparator(root);
        return path == r || path.StartsWith(r + Path.DirectorySeparatorChar, StringComparison.Ordinal);
    }

    /// <summary>The absolute path with every existing symbolic link along it replaced by its final target.</summary>
    static string Real(string path)
    {
        string full = Path.GetFullPath(path);
        string current = Path.GetPathRoot(full)!;
        foreach (string part in full[current.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            string next = Path.Combine(current, part);
            var info = new FileInfo(next);
            // A link's target may be relative to the link's directory; ResolveLinkTarget returns it absolute.
            current = info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target ? Path.GetFullPath(target.FullName) : next;
        }
        return current;
    }
}
