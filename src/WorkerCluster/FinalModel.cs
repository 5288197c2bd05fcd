using System.Globalization;
using System.Text.Json;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;
using static TorchSharp.torch;

namespace Jetpack.WorkerCluster;

/// <summary>
/// A job's training checkpoint (topology-free: a replicated file and one expert file per rank of
/// any world size) gathered into one full model checkpoint (<see cref="ModelCheckpoint"/>: timm-style
/// state-dict names, the model's identity in the metadata): the final.safetensors of every run on
/// workers, `jetpack train --workers` and the coordinator's jobs alike, and `jetpack export`.
/// The gather reads the checkpoint as rank 0 of a world of 1 (<see cref="TrainingCheckpoint.ReadRank"/>:
/// every file hashed against the manifest first, all experts of every layer); the AdamW moments are
/// read too and dropped (the cost: one read of the whole checkpoint, about 3× the model).
/// </summary>
public static class FinalModel
{
    public const string FileName = "final.safetensors";
    public const string JobKey = "jetpack.job";
    public const string StepKey = "jetpack.step";
    public const string Top1Key = "jetpack.top1";
    public const string Top5Key = "jetpack.top5";
    public const string EvalImagesKey = "jetpack.eval_images";

    /// <summary>The spec a training checkpoint was saved with (variant and architecture config from its manifest).</summary>
    public static ModelSpec SpecOf(TrainingManifest m, string dir) => TrainingCheckpoint.SpecOf(m, Path.Combine(dir, TrainingCheckpoint.ManifestFile));

    /// <summary>
    /// Gathers the checkpoint in <paramref name="dir"/> into <paramref name="path"/> (atomically: a
    /// temp file, then a rename). <paramref name="expectedStep"/>: refuse a checkpoint of another step
    /// (a job's final model is its last step's). <paramref name="eval"/>: the evaluation of the last
    /// step, kept in the metadata when it is of the checkpoint's step. Returns the manifest it read.
    /// </summary>
    public static TrainingManifest Write(string dir, string path, string? jobId = null, long? expectedStep = null, EvalResult? eval = null)
    {
        var m = TrainingCheckpoint.Verify(dir);
        if (expectedStep is { } want && m.Step != want)
            throw new InvalidDataException($"{Path.Combine(dir, TrainingCheckpoint.ManifestFile)}: step {m.Step}, the job ended at step {want}: the last step's checkpoint is missing");
        var spec = SpecOf(m, dir);
        using var model = Gather(dir, m, spec);
        var extra = new Dictionary<string, string> { [StepKey] = m.Step.ToString(CultureInfo.InvariantCulture) };
        if (jobId is not null) extra[JobKey] = jobId;
        if (eval is { } e && e.Step == m.Step)                  // an older evaluation does not describe these weights
        {
            extra[Top1Key] = e.Top1.ToString("R", CultureInfo.InvariantCulture);
            extra[Top5Key] = e.Top5.ToString("R", CultureInfo.InvariantCulture);
            extra[EvalImagesKey] = e.Images.ToString(CultureInfo.InvariantCulture);
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        ModelCheckpoint.Save(path, spec, model, extra);          // SafetensorsWriter: temp file + fsync + rename
        return m;
    }

    /// <summary>The full model of a checkpoint: every state-dict key from its <c>p.</c> entry, strictly (missing or extra keys name the file).</summary>
    static nn.Module<Tensor, Tensor> Gather(string dir, TrainingManifest m, ModelSpec spec)
    {
        nn.Module<Tensor, Tensor> model;
        using (Jetpack.Model.Layers.Init.Deferred()) model = ModelRegistry.Create(spec);   // every tensor is overwritten below
        try
        {
            var target = model.state_dict();
            var seen = new HashSet<string>();
            using (no_grad())
                foreach (var (name, t) in TrainingCheckpoint.ReadRank(dir, spec, world: 1, rank: 0))
                {
                    if (!name.StartsWith("p.", StringComparison.Ordinal)) continue;    // m./v.: AdamW moments
                    string key = name[2..];
                    if (!target.TryGetValue(key, out var into))
                        throw new CheckpointMismatchException(dir, $"holds '{key}', which {spec.Variant} lacks");
                    if (!into.shape.SequenceEqual(t.shape))
                        throw new CheckpointMismatchException(dir, $"'{key}' is [{string.Join(", ", t.shape)}], {spec.Variant}'s [{string.Join(", ", into.shape)}]");
                    into.copy_(t);
                    seen.Add(key);
                }
            var missing = target.Keys.Where(k => !seen.Contains(k)).ToList();
            if (missing.Count > 0) throw new CheckpointMismatchException(dir, $"lacks {missing.Count} tensor(s) of {spec.Variant}: {string.Join(", ", missing.Take(10))}");
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
