using Jetpack.Application.Recycling;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Recycling;
using Jetpack.Model.Registry;

namespace Jetpack.Coordinator.Tests.Recycling;

/// <summary>
/// <see cref="RecyclePipeline"/> in process on Fashion-MNIST-sized checkpoints (random selection:
/// no profiling): issue 12's output rules — inputs never overwritten, all outputs or none, a
/// cancellation leaves no temp files — and issue 13's one set of metadata for every caller.
/// </summary>
public sealed class RecyclePipelineTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "jetpack-pipeline-" + Guid.NewGuid().ToString("N"));

    public RecyclePipelineTests()
    {
        Directory.CreateDirectory(dir);
        using (var pred = ModelRegistry.Create("vit_fmnist_pred")) SafetensorsWriter.Write(File("pred.safetensors"), pred.state_dict());
        using (var target = ModelRegistry.Create("vit_fmnist_t")) SafetensorsWriter.Write(File("target.safetensors"), target.state_dict());
    }

    public void Dispose() => Directory.Delete(dir, recursive: true);

    string File(string name) => Path.Combine(dir, name);

    RecycleJob Job(string outName, string? report = null, string? indices = null) => new()
    {
        Successor = "v_jetmoe_fmnist", From = File("pred.safetensors"), Target = File("target.safetensors"),
        Options = new RecycleOptions { Method = RecycleMethod.Random }, Out = File(outName), Report = report, Indices = indices,
    };

    string[] Leftovers() => Directory.GetFiles(dir).Select(Path.GetFileName).Where(f => f is not ("pred.safetensors" or "target.safetensors")).ToArray()!;

    [Fact]
    public void IndicesEqualToTargetAreRefusedNamingBoth()
    {
        var e = Assert.Throws<ArgumentException>(() => RecyclePipeline.Run(Job("moe.safetensors", indices: File("target.safetensors"))));
        Assert.Contains("--indices and --target are the same file", e.Message);
        Assert.Empty(Leftovers());
    }

    [Fact]
    public void AnOutThatIsASymlinkToTheTargetIsRefused()
    {
        System.IO.File.CreateSymbolicLink(File("link.safetensors"), File("target.safetensors"));
        var e = Assert.Throws<ArgumentException>(() => RecyclePipeline.Run(Job("link.safetensors")));
        Assert.Contains("--out and --target", e.Message);
    }

    [Fact]
    public void TwoOutputsOnOnePathAreRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => RecyclePipeline.Run(Job("moe.safetensors", report: File("moe.safetensors"))));
        Assert.Contains("--out and --report are the same file", e.Message);
    }

    [Fact]
    public void AReportThatFailsLeavesNeitherModelNorIndices()
    {
        string reportDir = Directory.CreateDirectory(File("reports")).FullName;
        // The report's directory vanishes once the model is written: its write fails after the checks passed.
        void Progress(RecycleProgress p) { if (p.Step == RecycleStep.ModelWritten) Directory.Delete(reportDir, recursive: true); }
        Assert.ThrowsAny<IOException>(() => RecyclePipeline.Run(Job("moe.safetensors", report: Path.Combine(reportDir, "r.json")), Progress));
        Assert.Empty(Leftovers());
    }

    [Fact]
    public void CancellingDuringTheSaveLeavesNoOutputAndNoTempFiles()
    {
        using var cancel = new CancellationTokenSource();
        var steps = new List<RecycleStep>();
        void Progress(RecycleProgress p) { steps.Add(p.Step); if (p.Step == RecycleStep.ModelWritten) cancel.Cancel(); }
        Assert.ThrowsAny<OperationCanceledException>(() => RecyclePipeline.Run(Job("moe.safetensors"), Progress, cancel.Token));
        Assert.Contains(RecycleStep.ModelWritten, steps);          // the model's temp file did exist
        Assert.DoesNotContain(RecycleStep.IndicesWritten, steps);
        Assert.Empty(Leftovers());
    }

    [Fact]
    public void TheStudysEntryWritesTheSameMetadataReportAndIndicesAsRecycle()
    {
        var outcome = RecyclePipeline.Run(Job("moe.safetensors"));
        Assert.True(System.IO.File.Exists(outcome.Files.Report) && System.IO.File.Exists(outcome.Files.Indices), "recycle: report or indices missing");

        using (var sources = RecycleSources.Load(File("pred.safetensors"), ModelRegistry.Get("vit_fmnist_pred"), File("target.safetensors"), ModelRegistry.Get("vit_fmnist_t")))
            RecyclePipeline.Recycle(sources, ModelRegistry.Get("v_jetmoe_fmnist"), null, new RecycleOptions { Method = RecycleMethod.Random },
                                    RecycleOutputs.Beside(File("study.safetensors")));
        Assert.True(System.IO.File.Exists(File("study.report.json")) && System.IO.File.Exists(File("study.indices.safetensors")), "study: report or indices missing");

        using var a = SafetensorsReader.Open(File("moe.safetensors"));
        using var b = SafetensorsReader.Open(File("study.safetensors"));
        Assert.All(RecycleMetadata.Keys, k => Assert.True(a.Metadata.ContainsKey(k), $"recycle: '{k}' missing"));
        Assert.Equal(a.Metadata.OrderBy(kv => kv.Key), b.Metadata.OrderBy(kv => kv.Key));   // same recipe, same sources: identical
        Assert.Empty(Directory.GetFiles(dir, "*.tmp-*"));
    }
}
