using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Jetpack.Model.Distributed;
using Jetpack.Model.Models;
using Jetpack.Model.Training;
using AdamW = Jetpack.Model.Training.AdamW;

namespace Jetpack.Model.Checkpoints;

/// <summary>Where the data stream of a run stands: the sampler's (seed, global batch) and the position in it.</summary>
public sealed record DataPosition(ulong Seed, int GlobalBatch, int StepsPerEpoch, long Epoch, int StepInEpoch);

/// <summary>The experts one file holds for one MoE layer (a row range of each bank).</summary>
public sealed record LayerRange(string Prefix, int CoreStart, int CoreCount, int UnivStart, int UnivCount)
{
    public ExpertRange Range => new(CoreStart, CoreCount, UnivStart, UnivCount);
}

/// <summary>One expert file: which rank of the saving world wrote it and which experts of every layer it holds.</summary>
public sealed record ExpertFileEntry(int Rank, string File, IReadOnlyList<LayerRange> Layers);

/// <summary><c>manifest.json</c> of a training checkpoint directory (DESIGN.md "Checkpoints").</summary>
public sealed record TrainingManifest
{
    public int FormatVersion { get; init; }
    public string Variant { get; init; } = "";
    public string Architecture { get; init; } = "";
    public string Config { get; init; } = "";
    public string Experts { get; init; } = "";
    /// <summary>The full model's parameter count (informational; 0 in manifests written before it was recorded).</summary>
    public long Parameters { get; init; }
    public long Step { get; init; }
    public DataPosition Data { get; init; } = new(0, 0, 0, 0, 0);
    /// <summary>How random streams continue: there is no generator state to save (see <see cref="TrainingCheckpoint"/>).</summary>
    public string Rng { get; init; } = "";
    public long OptimizerSteps { get; init; }
    public int WorldSize { get; init; }
    /// <summary>G of the saving layout (world = G × R; <see cref="ParallelLayout"/>): the number of expert files. 0 in older manifests = world size.</summary>
    public int ExpertParallel { get; init; }
    [System.Text.Json.Serialization.JsonIgnore] public int ExpertFileCount => ExpertParallel == 0 ? WorldSize : ExpertParallel;
    public string ReplicatedFile { get; init; } = "";
    public IReadOnlyList<ExpertFileEntry> ExpertFiles { get; init; } = [];
    public IReadOnlyDictionary<string, string> Sha256 { get; init; } = new Dictionary<string, string>();
}

/// <summary>What a training checkpoint holds of one rank (or of the single process).</summary>
public sealed record TrainingState(ModelSpec Spec, nn.Module Model, AdamW Optimizer, long Step, DataPosition Data);

/// <summary>
/// Topology-free training checkpoints (DESIGN.md "Checkpoints"): a directory written under a
/// temporary name and renamed when complete, holding <c>manifest.json</c>, the replicated
/// parameters and their AdamW moments once (<c>replicated.safetensors</c>: <c>p.</c>/<c>m.</c>/<c>v.</c>
/// + state-dict key), and one file per expert range (<c>experts-r{rank}-of-{world}.safetensors</c>,
/// the same keys, rows = that rank's experts). Restoring with any world size re-slices: each rank
/// reads, from every expert file whose range overlaps its own, only the overlapping rows
/// (<see cref="SafetensorsReader.ReadRows"/>). Every file's SHA-256 is in the manifest and checked
/// before the file is read (hashing reads each needed file once in full).
///
/// RNG: the model generator is re-seeded at every step from (seed, step, rank) and Mixup/augmentation
/// are functions of (seed, step, micro, sample), so nothing random has to be saved: a resumed run
/// draws what the uninterrupted run would have drawn (per-rank streams need the same world size).
///
/// Distributed save: every rank writes its expert file into the shared temporary directory; an
/// all-reduce (the barrier) sums "written" flags; rank 0 then hashes all files, writes the
/// replicated file and the manifest, and renames; a second all-reduce tells every rank it is done.
/// Both all-reduces are tagged with the checkpoint's step (the trainer's step counter after that
/// step's gradient all-reduce).
/// </summary>
public static class TrainingCheckpoint
{
    public const int FormatVersion = 2;
    public const string ManifestFile = "manifest.json";
    public const string ReplicatedFile = "replicated.safetensors";
    public const string RngScheme = "stateless: model generator seeded per step from (seed, step, rank); augmentation and Mixup from (seed, step, micro, sample)";

    public static string ExpertFile(int rank, int world) => $"experts-r{rank}-of-{world}.safetensors";

    /// <summary>Where the checkpoint of <paramref name="step"/> is assembled before it is renamed to <paramref name="dir"/>.</summary>
    public static string TemporaryDirectory(string dir, long step) => dir.TrimEnd('/', '\\') + $".tmp-step{step}";

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>
    /// Writes the checkpoint of <paramref name="state"/> to <paramref name="dir"/> (replacing an older
    /// one atomically). <paramref name="context"/> null or a world of one: this process writes everything.
    /// Otherwise every rank of the world must call it with the same step; the world reducer is the
    /// barrier. With replicas (world = G × R) only replica 0 writes the G expert files — the other
    /// replicas hold the same experts — and the manifest records the layout; any layout loads it.
    /// </summary>
    public static void Save(string dir, TrainingState state, DistributedContext? context = null)
    {
        int world = context?.WorldSize ?? 1, rank = context?.Rank ?? 0;
        var shard = context?.Shard;
        int groupSize = shard?.WorldSize ?? 1, position = shard?.Rank ?? 0;
        bool writes = context?.WritesExperts ?? true;
        var reducer = context?.Reducer;
        var tmp = TemporaryDirectory(dir, state.Step);
        var mine = Path.Combine(tmp, ExpertFile(position, groupSize));
        Exception? failure = null;
        try
        {
            Directory.CreateDirectory(tmp);
            if (writes) WriteExperts(mine, state, shard);
        }
        catch (Exception e) { failure = e; }
        float written = Barrier(reducer, world, state.Step, failure is null ? 1 : 0);
        if (failure is not null) throw new IOException($"rank {rank}: writing {mine} failed: {failure.Message}", failure);
        if (written < world) throw new IOException($"rank {rank}: {world - written} other rank(s) failed to write their expert files into {tmp}");

        if (rank == 0)
        {
            try { Finish(dir, tmp, state, world, groupSize); }
            catch (Exception e) { failure = e; }
        }
        float finished = Barrier(reducer, world, state.Step, rank == 0 && failure is null ? 1 : 0);
        if (failure is not null) throw new IOException($"rank 0: completing checkpoint {dir} failed: {failure.Message}", failure);
        if (finished < 1) throw new IOException($"rank {rank}: rank 0 failed to complete checkpoint {dir}");
    }

    static float Barrier(IGradientReducer? reducer, int world, long step, float value)
    {
        if (world == 1 || reducer is null) return value;
        using var flag = torch.tensor(new[] { value });
        reducer.AllReduceSum(step, [flag]);
        return flag[0].item<float>();
    }

    static void WriteExperts(string path, TrainingState state, ExpertShard? shard)
    {
        var (tensors, _) = Collect(state, expert: true);
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string>
        {
            ["jetpack.world_size"] = (shard?.WorldSize ?? 1).ToString(),
            ["jetpack.rank"] = (shard?.Rank ?? 0).ToString(),
        });
    }

    /// <summary>p./m./v. entries of the expert or the replicated part of the state, in state-dict order.</summary>
    static (List<KeyValuePair<string, Tensor>> Tensors, int Params) Collect(TrainingState state, bool expert)
    {
        var parameters = state.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        int n = 0;
        foreach (var (key, t) in state.Model.state_dict())
        {
            if (ExpertKeys.IsExpert(state.Spec, key) != expert) continue;
            tensors.Add(new("p." + key, t));
            n++;
            if (parameters.TryGetValue(key, out var p) && state.Optimizer.State.TryGetValue(p, out var mv))
            {
                tensors.Add(new("m." + key, mv.M));
                tensors.Add(new("v." + key, mv.V));
            }
        }
        return (tensors, n);
    }

    static void Finish(string dir, string tmp, TrainingState state, int world, int groupSize)
    {
        var (replicated, _) = Collect(state, expert: false);
        SafetensorsWriter.Write(Path.Combine(tmp, ReplicatedFile), replicated);
        var files = Enumerable.Range(0, groupSize).Select(r => new ExpertFileEntry(r, ExpertFile(r, groupSize),
            state.Spec.MoeLayers().Select(l =>
            {
                var x = ExpertRange.For(l.Moe, groupSize, r);
                return new LayerRange(l.Prefix, x.CoreStart, x.CoreCount, x.UnivStart, x.UnivCount);
            }).ToList())).ToList();
        var listed = files.Select(f => f.File).Append(ReplicatedFile).ToList();
        foreach (var stale in Directory.GetFiles(tmp).Where(f => !listed.Contains(Path.GetFileName(f))))
            File.Delete(stale);                                                   // from an earlier, interrupted attempt
        var identity = ModelCheckpoint.IdentityOf(state.Spec);
        var manifest = new TrainingManifest
        {
            FormatVersion = FormatVersion,
            Variant = state.Spec.Variant,
            Architecture = identity[ModelCheckpoint.ArchitectureKey],
            Config = state.Spec.ConfigJson(),
            Experts = identity[ModelCheckpoint.ExpertsKey],
            Parameters = Registry.ModelRegistry.ParameterCount(state.Spec),
            Step = state.Step,
            Data = state.Data,
            Rng = RngScheme,
            OptimizerSteps = state.Optimizer.StepCount,
            WorldSize = world,
            ExpertParallel = groupSize,
            ReplicatedFile = ReplicatedFile,
            ExpertFiles = files,
            Sha256 = listed.ToDictionary(f => f, f => Sha256Hex.OfFile(Path.Combine(tmp, f))),
        };
        File.WriteAllText(Path.Combine(tmp, ManifestFile), JsonSerializer.Serialize(manifest, Json));
        if (Directory.Exists(dir))
        {
            var old = dir.TrimEnd('/', '\\') + $".old-{Guid.NewGuid():N}";
            Directory.Move(dir, old);
            Directory.Move(tmp, dir);
            Directory.Delete(old, recursive: true);
        }
        else Directory.Move(tmp, dir);
    }

    /// <summary>Checks one listed file against the manifest's SHA-256 (a read of the whole file) and opens it; errors name the file.</summary>
    static SafetensorsReader OpenVerified(string dir, TrainingManifest m, string file)
    {
        VerifyFile(dir, m, file);
        return SafetensorsReader.Open(Path.Combine(dir, file));
    }

    static void VerifyFile(string dir, TrainingManifest m, string file)
    {
        var path = Path.Combine(dir, file);
        var manifestPath = Path.Combine(dir, ManifestFile);
        if (!File.Exists(path)) throw new InvalidDataException($"{path}: listed in {manifestPath} but missing");
        var sha = Sha256Hex.OfFile(path);
        if (sha != m.Sha256[file])
            throw new InvalidDataException($"{path}: SHA-256 {sha} does not match {m.Sha256[file]} in {manifestPath}: the file is corrupt or was replaced");
    }

    /// <summary>The manifest, once every file it lists is present and hashes as it says (a read of every file); else the error naming the file.</summary>
    public static TrainingManifest Verify(string dir)
    {
        var m = ReadManifest(dir);
        foreach (var file in m.Sha256.Keys) VerifyFile(dir, m, file);
        return m;
    }

    /// <summary>Reads and checks <c>manifest.json</c>; errors name the file and the field.</summary>
    public static TrainingManifest ReadManifest(string dir)
    {
        var path = Path.Combine(dir, ManifestFile);
        if (!File.Exists(path))
            throw new InvalidDataException(File.Exists(Path.Combine(dir, "trainer.json"))
                ? $"{dir}: a training checkpoint of format 1 (trainer.json); this build reads format {FormatVersion} (manifest.json)"
                : $"{path}: missing; {dir} is not a training checkpoint");
        TrainingManifest? m;
        try { m = JsonSerializer.Deserialize<TrainingManifest>(File.ReadAllText(path), Json); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
        if (m is null) throw new InvalidDataException($"{path}: empty manifest");
        if (m.FormatVersion != FormatVersion) throw new InvalidDataException($"{path}: format_version {m.FormatVersion}, this build reads {FormatVersion}");
        if (m.WorldSize < 1 || m.ExpertParallel < 0 || m.ExpertFileCount > m.WorldSize || m.WorldSize % m.ExpertFileCount != 0 || m.ExpertFiles.Count != m.ExpertFileCount)
            throw new InvalidDataException($"{path}: world_size {m.WorldSize}, expert_parallel {m.ExpertParallel} with {m.ExpertFiles.Count} expert_files");
        foreach (var f in m.ExpertFiles.Select(e => e.File).Append(m.ReplicatedFile))
            if (!m.Sha256.ContainsKey(f) || f.Contains('/') || f.Contains('\\') || f.Contains(".."))
                throw new InvalidDataException($"{path}: file '{f}' has no sha256 entry or is not a plain file name");
        return m;
    }

    /// <summary>The model a manifest was saved for (its architecture and config).</summary>
    public static ModelSpec SpecOf(TrainingManifest m, string manifestPath)
    {
        try { return ModelSpec.FromConfig(m.Variant, m.Architecture, m.Config); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{manifestPath}: architecture: {e.Message}", e); }
        catch (JsonException e) { throw new InvalidDataException($"{manifestPath}: config: not a valid {m.Architecture} config: {e.Message}", e); }
    }

    /// <summary>
    /// Loads a checkpoint saved with any world size into this rank's model and optimizer (the model
    /// built with <paramref name="shard"/>, null = all experts). Returns the manifest (step, data position).
    /// </summary>
    public static TrainingManifest Restore(string dir, ModelSpec spec, nn.Module model, AdamW optimizer, ExpertShard? shard = null)
    {
        var m = ReadManifest(dir);
        var manifestPath = Path.Combine(dir, ManifestFile);
        // The architecture must fit (ArchitectureFit); regularisation may differ (e.g. a deterministic resume of a stochastic run).
        var fit = ArchitectureFit.Compare(SpecOf(m, manifestPath), spec);
        if (!fit.Fits) throw new CheckpointMismatchException(manifestPath, fit.Describe());

        var readers = new Dictionary<string, SafetensorsReader>();
        SafetensorsReader Open(string file) => readers.TryGetValue(file, out var r) ? r : readers[file] = OpenVerified(dir, m, file);

        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var target = model.state_dict();                      // the model's own tensors: outside the scope below
        try
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();                  // what is read from the files
            var moments = new List<(Parameter, Tensor, Tensor)>();
            var replicated = Open(m.ReplicatedFile);
            // Keys and shapes from the header first: a missing, mis-shaped or unexpected tensor is refused before any is read.
            var seen = new HashSet<string>();
            foreach (var (key, t) in target)
            {
                if (ExpertKeys.Classify(spec, key) is not null) continue;
                seen.Add("p." + key);
                if (!replicated.Contains("p." + key)) throw new CheckpointMismatchException(replicated.Path, $"lacks '{key}'");
                var header = replicated.GetHeader("p." + key);
                if (!header.Shape.SequenceEqual(t.shape))
                    throw new CheckpointMismatchException(replicated.Path, $"'{key}' is [{string.Join(", ", header.Shape)}], the model's [{string.Join(", ", t.shape)}]");
            }
            var unexpected = replicated.Names.Where(n => n.StartsWith("p.", StringComparison.Ordinal) && !seen.Contains(n)).ToList();
            if (unexpected.Count > 0) throw new CheckpointMismatchException(replicated.Path, $"holds keys the model lacks: {string.Join(", ", unexpected.Take(10))}");
            foreach (var (key, t) in target)
            {
                if (ExpertKeys.Classify(spec, key) is { } ek)
                {
                    RestoreExpert(key, ek, t, parameters.GetValueOrDefault(key), m, shard, Open, moments, dir);
                    continue;
                }
                var saved = replicated.ReadTensor("p." + key);
                t.copy_(saved);
                if (parameters.TryGetValue(key, out var p) && replicated.Contains("m." + key))
                    moments.Add((p, replicated.ReadTensor("m." + key), replicated.ReadTensor("v." + key)));
            }
            optimizer.Restore(moments, m.OptimizerSteps);
        }
        finally
        {
            foreach (var r in readers.Values) r.Dispose();
        }
        return m;
    }

    /// <summary>
    /// One rank's state in a checkpoint saved with any world size, as the tensors a scatter sends
    /// (<c>p.</c>/<c>m.</c>/<c>v.</c> + state-dict key, as in the files): replicated entries whole,
    /// expert entries as the rows of <paramref name="rank"/>'s range in a world of
    /// <paramref name="world"/>, each gathered from the saved files that overlap it (only those rows
    /// are read). Lazy: one tensor at a time, disposed when the caller asks for the next. Every file
    /// is hashed against the manifest before it is read.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, Tensor>> ReadRank(string dir, ModelSpec spec, int world, int rank)
    {
        var m = ReadManifest(dir);
        var readers = new Dictionary<string, SafetensorsReader>();
        SafetensorsReader Open(string file) => readers.TryGetValue(file, out var r) ? r : readers[file] = OpenVerified(dir, m, file);
        try
        {
            var replicated = Open(m.ReplicatedFile);
            foreach (var name in replicated.Names)
            {
                var t = replicated.ReadTensor(name);
                try { yield return new(name, t); }
                finally { t.Dispose(); }
            }
            foreach (var name in Open(m.ExpertFiles[0].File).Names)
            {
                string key = name[2..];
                var ek = ExpertKeys.Classify(spec, key) ?? throw new CheckpointMismatchException(Path.Combine(dir, m.ExpertFiles[0].File), $"'{key}' is not an expert tensor of {spec.Variant}");
                var (start, count) = ek.Rows(ExpertRange.For(ek.Config, world, rank));
                var pieces = new List<Tensor>();
                long covered = 0;
                foreach (var entry in m.ExpertFiles)
                {
                    var layer = entry.Layers.FirstOrDefault(l => l.Prefix == ek.Prefix)
                        ?? throw new InvalidDataException($"{Path.Combine(dir, ManifestFile)}: expert file {entry.File} lists no range for {ek.Prefix}");
                    var (s, c) = ek.Rows(layer.Range);
                    int lo = Math.Max(s, start), hi = Math.Min(s + c, start + count);
                    if (lo >= hi) continue;
                    pieces.Add(Open(entry.File).ReadRows(name, lo - s, hi - lo));
                    covered += hi - lo;
                }
                if (covered != count)
                    throw new InvalidDataException($"{Path.Combine(dir, ManifestFile)}: the expert files cover {covered} of the {count} rows of '{key}' rank {rank} of {world} needs");
                Tensor rows;
                if (pieces.Count == 1) rows = pieces[0];
                else if (pieces.Count == 0)
                {
                    var shape = Open(m.ExpertFiles[0].File).GetEntry(name).Shape.ToArray();
                    shape[0] = 0;
                    rows = torch.empty(shape, Open(m.ExpertFiles[0].File).GetEntry(name).DType.ToScalarType());
                }
                else
                {
                    rows = torch.cat(pieces.ToArray(), 0);                       // a copy of this rank's rows only
                    foreach (var p in pieces) p.Dispose();
                }
                try { yield return new(name, rows); }
                finally { rows.Dispose(); }
            }
        }
        finally
        {
            foreach (var r in readers.Values) r.Dispose();
        }
    }

    /// <summary>
    /// Loads one rank's state as <see cref="ReadRank"/> produced it (after a scatter) into the
    /// rank's model and optimizer: every state-dict key needs its <c>p.</c> entry with the model's
    /// shape; parameters take their <c>m.</c>/<c>v.</c> moments when present. Errors name
    /// <paramref name="source"/> and the keys.
    /// </summary>
    public static void RestoreTensors(IReadOnlyDictionary<string, Tensor> state, string source, nn.Module model, AdamW optimizer, long optimizerSteps)
    {
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var target = model.state_dict();
        var missing = target.Keys.Where(k => !state.ContainsKey("p." + k)).ToList();
        var unexpected = state.Keys.Where(n => n.StartsWith("p.", StringComparison.Ordinal) && !target.ContainsKey(n[2..])).ToList();
        var misShaped = target.Where(kv => state.TryGetValue("p." + kv.Key, out var t) && !t.shape.SequenceEqual(kv.Value.shape))
                              .Select(kv => $"{kv.Key}: [{string.Join(", ", state["p." + kv.Key].shape)}], the model's [{string.Join(", ", kv.Value.shape)}]").ToList();
        if (missing.Count + unexpected.Count + misShaped.Count > 0)
            throw new CheckpointMismatchException(source, $"does not fit this rank's model — missing: [{string.Join(", ", missing)}]; unexpected: [{string.Join(", ", unexpected)}]; mis-shaped: [{string.Join("; ", misShaped)}]");
        using var _ = no_grad();
        var moments = new List<(Parameter, Tensor, Tensor)>();
        foreach (var (key, t) in target)
        {
            t.copy_(state["p." + key]);
            if (parameters.TryGetValue(key, out var p) && state.TryGetValue("m." + key, out var mt) && state.TryGetValue("v." + key, out var vt))
                moments.Add((p, mt, vt));                                      // AdamW.Restore copies
        }
        optimizer.Restore(moments, optimizerSteps);
    }

    /// <summary>Fills this rank's rows of one expert tensor (and its moments) from every saved file that overlaps them.</summary>
    static void RestoreExpert(string key, ExpertKey ek, Tensor local, Parameter? p, TrainingManifest m, ExpertShard? shard,
                              Func<string, SafetensorsReader> open, List<(Parameter, Tensor, Tensor)> moments, string dir)
    {
        var mine = shard?.Range(ek.Config) ?? new ExpertRange(0, ek.Config.CoreExperts, 0, ek.Config.UniversalExperts);
        var (start, count) = ek.Rows(mine);
        if (local.shape[0] != count)
            throw new InvalidOperationException($"'{key}' has {local.shape[0]} rows, the shard's range {mine} says {count}");
        if (count == 0) return;
        Tensor? mLocal = null, vLocal = null;
        long filled = 0, withMoments = 0;
        foreach (var entry in m.ExpertFiles)
        {
            var layer = entry.Layers.FirstOrDefault(l => l.Prefix == ek.Prefix)
                ?? throw new InvalidDataException($"{Path.Combine(dir, ManifestFile)}: expert file {entry.File} lists no range for {ek.Prefix}");
            var (s, c) = ek.Rows(layer.Range);
            int lo = Math.Max(s, start), hi = Math.Min(s + c, start + count);
            if (lo >= hi) continue;
            var reader = open(entry.File);
            if (!reader.Contains("p." + key)) throw new CheckpointMismatchException(reader.Path, $"lacks '{key}'");
            var shape = reader.GetEntry("p." + key).Shape;
            if (shape.Length == 0 || shape[0] != c || !shape.Skip(1).SequenceEqual(local.shape.Skip(1)))
                throw new CheckpointMismatchException(reader.Path, $"'{key}' is [{string.Join(", ", shape)}], expected [{c}, {string.Join(", ", local.shape.Skip(1))}]");
            local.narrow(0, lo - start, hi - lo).copy_(reader.ReadRows("p." + key, lo - s, hi - lo));   // only the overlapping experts
            filled += hi - lo;
            if (p is not null && reader.Contains("m." + key))
            {
                mLocal ??= torch.zeros_like(local);
                vLocal ??= torch.zeros_like(local);
                mLocal.narrow(0, lo - start, hi - lo).copy_(reader.ReadRows("m." + key, lo - s, hi - lo));
                vLocal.narrow(0, lo - start, hi - lo).copy_(reader.ReadRows("v." + key, lo - s, hi - lo));
                withMoments += hi - lo;
            }
        }
        if (filled != count)
            throw new InvalidDataException($"{Path.Combine(dir, ManifestFile)}: the expert files cover {filled} of the {count} rows of '{key}' this rank needs");
        if (withMoments != 0 && withMoments != count)
            throw new InvalidDataException($"{Path.Combine(dir, ManifestFile)}: optimizer moments of '{key}' cover {withMoments} of {count} rows");
        if (p is not null && mLocal is not null) moments.Add((p, mLocal, vLocal!));
    }
}
