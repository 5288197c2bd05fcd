namespace Jetpack.Application.Recycling;

/// <summary>
/// Checks a run's outputs before any work (issue 12: a bad <c>--out</c> used to abort after
/// minutes of loading and profiling): no output is a directory, none is an input or another
/// output. Writability is proven by <see cref="StagedOutputs.Reserve"/>, which creates each
/// output's temp file in its directory.
/// </summary>
public static class OutputPaths
{
    public static void Check(IReadOnlyList<NamedPath> outputs, IReadOnlyList<NamedPath> inputs)
    {
        foreach (var o in outputs)
        {
            if (string.IsNullOrWhiteSpace(o.Path)) throw new ArgumentException($"{o.Name}: the path is empty");
            if (Directory.Exists(o.Path))
                throw new ArgumentException($"{o.Name}: {o.Path} is a directory; give a file path");
            string dir = Path.GetDirectoryName(Path.GetFullPath(o.Path))!;
            if (!Directory.Exists(dir))
                throw new ArgumentException($"{o.Name}: the directory {dir} does not exist");
        }
        for (int i = 0; i < outputs.Count; i++)
        {
            string a = Resolve(outputs[i].Path);
            foreach (var input in inputs)
                if (a == Resolve(input.Path))
                    throw new ArgumentException($"{outputs[i].Name} and {input.Name} are the same file ({input.Path}): the output would overwrite the input");
            for (int j = 0; j < i; j++)
                if (a == Resolve(outputs[j].Path))
                    throw new ArgumentException($"{outputs[j].Name} and {outputs[i].Name} are the same file ({outputs[i].Path}): one output would overwrite the other");
        }
    }

    /// <summary>The full path with symbolic links resolved where the file or its directory exists (one stat each).</summary>
    public static string Resolve(string path)
    {
        string full = Path.GetFullPath(path);
        if (File.Exists(full) && new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true) is { } target)
            return Path.GetFullPath(target.FullName);
        string? dir = Path.GetDirectoryName(full);
        if (dir is not null && Directory.Exists(dir) && new DirectoryInfo(dir).ResolveLinkTarget(returnFinalTarget: true) is { } linked)
            return Path.Combine(Path.GetFullPath(linked.FullName), Path.GetFileName(full));
        return full;
    }
}
