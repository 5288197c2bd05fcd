using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Storage;

namespace Jetpack.Coordinator.Hosting;

/// <summary>
/// Grain state in files under a directory (DESIGN.md: single machine, "state in files under a data
/// directory"): one file per grain and state name, Orleans' binary serializer, written to a
/// temporary name, flushed and renamed, so a crash leaves the old or the new state, never half of
/// one. The ETag is a write counter kept in the file; a stale writer is refused as Orleans expects.
/// One silo owns the directory (localhost clustering); a cluster uses Redis storage instead.
/// </summary>
public sealed class FileGrainStorage(string directory, Serializer serializer) : IGrainStorage
{
    readonly SemaphoreSlim gate = new(1, 1);

    string PathOf(string stateName, GrainId grainId)
    {
        // Grain ids may hold any characters: the file name is a hex encoding, bounded by a hash when long.
        string id = grainId.ToString();
        string safe = id.Length <= 80 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')
            ? id : Jetpack.Model.Checkpoints.Sha256Hex.OfText(id);
        return Path.Combine(directory, stateName, safe.Replace('/', '_') + ".bin");
    }

    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        string path = PathOf(stateName, grainId);
        if (!File.Exists(path))
        {
            grainState.RecordExists = false;
            grainState.ETag = null;
            return;
        }
        var (etag, state) = serializer.Deserialize<(string, T)>(await File.ReadAllBytesAsync(path));
        (grainState.State, grainState.ETag, grainState.RecordExists) = (state, etag, true);
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        string path = PathOf(stateName, grainId);
        await gate.WaitAsync();
        try
        {
            string? stored = File.Exists(path) ? serializer.Deserialize<(string, T)>(await File.ReadAllBytesAsync(path)).Item1 : null;
            if (stored != grainState.ETag)
                throw new InconsistentStateException($"grain {grainId} state '{stateName}': stored ETag {stored ?? "(none)"}, writer has {grainState.ETag ?? "(none)"}", stored ?? "", grainState.ETag ?? "");
            string next = ((long.TryParse(stored, out long n) ? n : 0) + 1).ToString();
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            string temp = path + ".tmp";
            await using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write))
            {
                await file.WriteAsync(serializer.SerializeToArray((next, grainState.State)));
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
            (grainState.ETag, grainState.RecordExists) = (next, true);
        }
        finally
        {
            gate.Release();
        }
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        File.Delete(PathOf(stateName, grainId));
        (grainState.ETag, grainState.RecordExists) = (null, false);
        return Task.CompletedTask;
    }
}
