using System.Security.Cryptography;

namespace Jetpack.Application.Recycling;

/// <summary>
/// All-or-nothing outputs: each file is written under a temp name in its own directory
/// (<c>&lt;path&gt;.tmp-&lt;hex&gt;</c>, so the final rename never crosses a filesystem) and all are
/// renamed to their names only by <see cref="Publish"/>, after every one is written. Disposing
/// before that (a failure, a cancellation) deletes the temps, so a failed or stopped run leaves
/// neither a partial set nor a gigabyte of <c>.tmp-*</c>.
/// </summary>
public sealed class StagedOutputs : IDisposable
{
    readonly List<(NamedPath Output, string Temp)> files = [];
    bool published;

    StagedOutputs() { }

    /// <summary>
    /// Creates every output's (empty) temp file now: this is the writability check, done before
    /// any work, and it fails naming the option (a read-only or missing directory, a full disk's inode table).
    /// </summary>
    public static StagedOutputs Reserve(IEnumerable<NamedPath> outputs)
    {
        var staged = new StagedOutputs();
        try
        {
            foreach (var o in outputs)
            {
                string temp = $"{Path.GetFullPath(o.Path)}.tmp-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}";
                try { using (new FileStream(temp, FileMode.CreateNew, FileAccess.Write)) { } }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new ArgumentException($"{o.Name}: cannot write {o.Path}: {e.Message}", e);
                }
                staged.files.Add((o, temp));
            }
            return staged;
        }
        catch
        {
            staged.Dispose();
            throw;
        }
    }

    /// <summary>The temp path to write the output named <paramref name="name"/> to.</summary>
    public string Temp(string name) => files.Single(f => f.Output.Name == name).Temp;

    /// <summary>Renames every temp to its output (each rename atomic; all written before the first).</summary>
    public void Publish()
    {
        foreach (var (output, temp) in files)
            try { File.Move(temp, output.Path, overwrite: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"{output.Name}: could not move {temp} to {output.Path}: {e.Message}", e);
            }
        published = true;
    }

    public void Dispose()
    {
        if (published) return;
        foreach (var (_, temp) in files)
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }   // best effort: the error being reported matters more
    }
}
