using System.Diagnostics;
using System.Text.Json;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Recycling;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Application.Recycling;

/// <summary>Where a recycling run is; <see cref="RecycleStep.ModelWritten"/> and later steps name temp files not yet published.</summary>
public enum RecycleStep { Started, Loaded, Profiled, Recycled, ModelWritten, IndicesWritten, ReportWritten, Published }

public sealed record RecycleProgress(RecycleStep Step, string Message);

public sealed record RecycleOutcome(RecyclingReport Report, RecycleOutputs Files);

/// <summary>
/// The one recycling pipeline (spec §5), behind <c>jetpack recycle</c>, the study and the
/// coordinator's recycling service: check the outputs, load and hash the sources, load or profile
/// activation statistics, recycle, and write the checkpoint (with <see cref="RecycleMetadata"/>),
/// the index sets and the JSON report — all or none (<see cref="StagedOutputs"/>). The token is
/// checked between steps; a step in flight (a profile pass, one file's write) finishes first.
/// </summary>
public static class RecyclePipeline
{
    public static RecycleOutcome Run(RecycleJob job, Action<RecycleProgress>? progress = null, CancellationToken cancel = default)
    {
        ModelSpec successor;
        try { successor = ModelRegistry.Resolve(job.Successor); }
        catch (ModelRequestException e) { throw new ArgumentException($"--model: {(e.Field.Length == 0 ? "" : e.Field + ": ")}{e.Problem}", e); }
        var recipe = RecyclingRecipes.For(successor.Variant);
        var fromSpec = ModelRegistry.Get(job.FromVariant ?? recipe?.Predecessor
            ?? throw new ArgumentException($"--from-variant is required: there is no default predecessor for {successor.Variant}"));
        var targetSpec = job.Target is null ? null : ModelRegistry.Get(job.TargetVariant ?? recipe?.Target
            ?? throw new ArgumentException($"--target-variant is required: there is no default target for {successor.Variant}"));
        bool profiles = ProfilesStatistics(job);

        var files = new RecycleOutputs(job.Out, job.IndicesPath, job.ReportPath);
        var outputs = new List<NamedPath> { new("--out", files.Model), new("--indices", files.Indices), new("--report", files.Report) };
        if (profiles && job.SaveStats is not null) outputs.Add(new("--save-stats", job.SaveStats));
        var inputs = new List<NamedPath> { new("--from", job.From) };
        if (job.Target is not null) inputs.Add(new("--target", job.Target));
        if (job.Stats is not null) inputs.Add(new("--stats", job.Stats));
        OutputPaths.Check(outputs, inputs);
        using var staged = StagedOutputs.Reserve(outputs);

        var timings = new Dictionary<string, double>();
        var clock = Stopwatch.StartNew();
        double Lap() { double t = clock.Elapsed.TotalSeconds; clock.Restart(); return t; }
        progress?.Invoke(new(RecycleStep.Started, $"recycling {ModelRegistry.Summary(successor)}\n  from {fromSpec.Variant} ({RecycleOptions.Name(job.Options.Method)}, seed {job.Options.Seed})"));
        using var sources = RecycleSources.Load(job.From, fromSpec, job.Target, targetSpec);
        timings["load"] = Lap();
        progress?.Invoke(new(RecycleStep.Loaded, $"loaded {job.From}{(job.Target is null ? "" : $" and {job.Target}")}"));
        cancel.ThrowIfCancellationRequested();

        using var stats = job.Stats is not null ? ActivationStats.Load(job.Stats)
                        : profiles ? job.Profiler!(Request(job, successor, sources)) : null;
        if (profiles && job.SaveStats is not null) stats!.Save(staged.Temp("--save-stats"));
        timings["profile"] = Lap();
        progress?.Invoke(new(RecycleStep.Profiled, stats is null ? "no statistics needed" : $"statistics of {stats.Images:N0} images"));
        cancel.ThrowIfCancellationRequested();

        var report = Emit(staged, new("--out", "--indices", "--report"), files, successor, sources, stats, job.Options, job.Stats, timings, Lap, progress, cancel);
        staged.Publish();
        progress?.Invoke(new(RecycleStep.Published, $"written: {files.Model}, {files.Report}, {files.Indices}"));
        return new RecycleOutcome(report, files);
    }

    /// <summary>
    /// Recycles one successor from sources already loaded and statistics already collected (the
    /// study: one profile, several successors), with the same outputs and metadata as <see cref="Run"/>.
    /// </summary>
    public static RecyclingReport Recycle(RecycleSources sources, ModelSpec successor, ActivationStats? stats, RecycleOptions options,
                                          RecycleOutputs files, Action<RecycleProgress>? progress = null, CancellationToken cancel = default)
    {
        var outputs = new List<NamedPath> { new("model", files.Model), new("indices", files.Indices), new("report", files.Report) };
        var inputs = new List<NamedPath> { new("predecessor", sources.Predecessor.Path) };
        if (sources.Target is not null) inputs.Add(new("target", sources.Target.Path));
        OutputPaths.Check(outputs, inputs);
        using var staged = StagedOutputs.Reserve(outputs);
        var clock = Stopwatch.StartNew();
        double Lap() { double t = clock.Elapsed.TotalSeconds; clock.Restart(); return t; }
        var report = Emit(staged, new("model", "indices", "report"), files, successor, sources, stats, options, null, [], Lap, progress, cancel);
        staged.Publish();
        return report;
    }

    /// <summary>Writes the three files to their temps (the caller publishes).</summary>
    static RecyclingReport Emit(StagedOutputs staged, (string Model, string Indices, string Report) names, RecycleOutputs files,
                                ModelSpec successor, RecycleSources sources, ActivationStats? stats, RecycleOptions options, string? statsPath,
                                Dictionary<string, double> timings, Func<double> lap, Action<RecycleProgress>? progress, CancellationToken cancel)
    {
        using var result = CheckpointRecycler.Recycle(successor, sources.Predecessor.Spec, sources.Predecessor.Tensors, sources.Target?.Tensors, stats, options);
        timings["recycle"] = lap();
        progress?.Invoke(new(RecycleStep.Recycled, $"recycled {successor.Variant}"));
        cancel.ThrowIfCancellationRequested();

        ModelCheckpoint.Save(staged.Temp(names.Model), successor, result.Model, RecycleMetadata.For(options, sources));
        progress?.Invoke(new(RecycleStep.ModelWritten, $"model written ({staged.Temp(names.Model)})"));
        cancel.ThrowIfCancellationRequested();
        RecyclingReport.ExportIndices(result, staged.Temp(names.Indices));
        progress?.Invoke(new(RecycleStep.IndicesWritten, $"indices written ({staged.Temp(names.Indices)})"));
        cancel.ThrowIfCancellationRequested();
        timings["save"] = lap();

        var report = new RecyclingReport
        {
            Successor = successor.Variant, Method = RecycleOptions.Name(options.Method), Seed = options.Seed,
            DenseFrom = RecycleMetadata.DenseFromName(options.DenseFrom),
            Predecessor = sources.PredecessorFile, Target = sources.TargetFile,
            Statistics = statsPath, ProfiledImages = stats?.Images,
            Layers = RecyclingReport.Coverage(result), ProvenanceCounts = RecyclingReport.CountProvenance(result),
            FreshKeys = result.Provenance.Where(p => p.Value == Provenance.Fresh).Select(p => p.Key).ToList(),
            UnusedTargetKeys = result.UnusedTargetKeys, IgnoredKeys = sources.Ignored,
            IndicesFile = files.Indices, TimingsSeconds = timings,
        };
        File.WriteAllText(staged.Temp(names.Report), JsonSerializer.Serialize(report, RecyclingReport.Json));
        progress?.Invoke(new(RecycleStep.ReportWritten, $"report written ({staged.Temp(names.Report)})"));
        cancel.ThrowIfCancellationRequested();
        return report;
    }

    /// <summary>Whether this run profiles; refuses both or neither source of statistics where the method needs them.</summary>
    static bool ProfilesStatistics(RecycleJob job)
    {
        if (job.Stats is not null && job.Profiler is not null) throw new ArgumentException("give either --stats or profiling images, not both");
        if (job.Stats is not null) return false;
        if (job.Profiler is null && job.Options.NeedsStatistics)
            throw new ArgumentException($"--method {RecycleOptions.Name(job.Options.Method)} needs activation statistics: give --stats FILE, --profile-images DIR or --profile-fashion-mnist");
        return job.Profiler is not null;
    }

    /// <summary>What this recipe reads (each statistic is a pass over every activation): the method's
    /// statistic, L2 for graph channels, attention inputs only for paper-literal dense selection.</summary>
    static ProfileRequest Request(RecycleJob job, ModelSpec successor, RecycleSources sources)
    {
        var o = job.Options;
        var coact = o.Method == RecycleMethod.Graph || job.CoActivation ? successor.MoeLayers().Select(l => $"{l.Prefix}.act").ToHashSet() : null;
        var kinds = o.Statistic switch { ImportanceStat.L1 => StatKinds.L1, ImportanceStat.ActivationCount => StatKinds.ActivationCount, _ => StatKinds.L2 };
        if (o.Method == RecycleMethod.Graph) kinds |= StatKinds.L2;
        return new ProfileRequest(sources.Predecessor.Spec, sources.Predecessor, o.Seed, coact, kinds, o.DenseFrom == DenseSource.Predecessor);
    }
}
