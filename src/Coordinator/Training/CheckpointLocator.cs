using Jetpack.Model.Checkpoints;

namespace Jetpack.Coordinator.Training;

/// <summary>
/// Finds the training checkpoint a recovery resumes from. <see cref="TrainingCheckpoint.Save"/>
/// assembles a checkpoint under <c>DIR.tmp-stepN</c> and then swaps it in (<c>DIR</c> → <c>DIR.old-*</c>,
/// tmp → <c>DIR</c>, old deleted), so a process killed in the middle leaves the newest complete
/// checkpoint in one of three places: <c>DIR</c>; <c>DIR.old-*</c> (killed between the two renames);
/// or a tmp directory whose manifest was written (killed before the first rename). A tmp
/// directory without a manifest is a write that never finished. Every candidate's files are
/// hashed against its manifest (a read of each file: the recovery's cost, not the steady state's);
/// the newest step that verifies wins.
/// </summary>
public static class CheckpointLocator
{
    public sealed record Found(string Directory, TrainingManifest Manifest);

    public static Found? Latest(string dir)
    {
        var parent = Path.GetDirectoryName(Path.GetFullPath(dir))!;
        if (!Directory.Exists(parent)) return null;
        string name = Path.GetFileName(dir.TrimEnd('/', '\\'));
        var candidates = new[] { dir }.Concat(Directory.GetDirectories(parent, name + ".old-*")).Concat(Directory.GetDirectories(parent, name + ".tmp-step*"));
        Found? best = null;
        foreach (var c in candidates)
            if (Verified(c) is { } m && (best is null || m.Step > best.Manifest.Step)) best = new Found(c, m);
        return best;
    }

    /// <summary>The manifest when every file it lists is present and hashes as it says; else null.</summary>
    public static TrainingManifest? Verified(string dir)
    {
        if (!File.Exists(Path.Combine(dir, TrainingCheckpoint.ManifestFile))) return null;
        try { return TrainingCheckpoint.Verify(dir); }
        catch (Exception e) when (e is InvalidDataException or IOException) { return null; }
    }
}
