using System.Text.Json;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>
/// `jetpack study --smoke` end to end on real Fashion-MNIST: upstream runs, profiling, every recycling
/// strategy and weight selection, ten downstream runs, Tables 1 and 3, the plots; a second call keeps
/// every finished stage.
/// </summary>
public sealed class StudyCommandTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "jetpack-study-" + Guid.NewGuid().ToString("N"));

    public void Dispose() { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }

    [Fact]
    public void RunsEveryStageWritesTablesAndPlotsAndKeepsFinishedStages()
    {
        var (code, output) = CliProcess.Jetpack("study", "--smoke", "--out", dir, "--threads", "1", "--bf16", "on");
        Assert.True(code == 0, output);
        foreach (var f in new[] { "results.md", "results.json", "fig5_convergence.png", "table3_strategies.png",
                                  "upstream/vit_fmnist_pred/final.safetensors", "upstream/vit_fmnist_t/final.safetensors",
                                  "init/dense_selection.safetensors", "init/v_jetmoe_fmnist_graph.safetensors",
                                  "init/v_jetmoe_fmnist_upcycle_sparse-upcycling.safetensors" })
            Assert.True(File.Exists(Path.Combine(dir, f)), $"{f} missing");

        // Issue 13: the study recycles through the same pipeline as `jetpack recycle`: the same metadata keys, a report and index sets.
        string graph = Path.Combine(dir, "init/v_jetmoe_fmnist_graph.safetensors");
        using (var reader = Jetpack.Model.Checkpoints.SafetensorsReader.Open(graph))
            Assert.All(Jetpack.Application.Recycling.RecycleMetadata.Keys, k => Assert.True(reader.Metadata.ContainsKey(k), $"{graph}: metadata '{k}' missing"));
        Assert.True(File.Exists(Path.ChangeExtension(graph, ".report.json")), "graph init: report missing");
        Assert.True(File.Exists(Path.ChangeExtension(graph, ".indices.safetensors")), "graph init: indices missing");

        var md = File.ReadAllText(Path.Combine(dir, "results.md"));
        Assert.Contains("## Table 1", md);
        Assert.Contains("## Table 3", md);
        Assert.Contains("| Soft MoE, from scratch | `soft_moe_fmnist` |", md);
        Assert.Contains("## Claims with 95 % confidence (1 seed)", md);
        Assert.Contains("one seed: no interval, not decided", md);
        Assert.Contains("step time bf16 / fp32", md);

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "results.json")));
        var rows = json.RootElement.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(10, rows.Count);
        foreach (var row in rows)
        {
            var run = Assert.Single(row.GetProperty("per_seed").EnumerateArray());
            Assert.Equal(4, run.GetProperty("steps").GetInt64());
            double top1 = run.GetProperty("top1").GetDouble();
            Assert.InRange(top1, 0, 1);
            Assert.Equal(top1, row.GetProperty("top1").GetProperty("mean").GetDouble());
            Assert.NotEmpty(run.GetProperty("curve").EnumerateArray());
        }

        // a second call with the same plan redoes nothing, also in a copy of the folder whose files are newer
        string copy = Path.Combine(dir, "copy");
        foreach (var file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).ToList())
        {
            string to = Path.Combine(copy, Path.GetRelativePath(dir, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
            File.SetLastWriteTimeUtc(to, DateTime.UtcNow.AddMinutes(5));
        }
        var (again, output2) = CliProcess.Jetpack("study", "--smoke", "--out", copy, "--threads", "1", "--only", "jetpack");
        Assert.True(again == 0, output2);
        Assert.Contains("done earlier, kept", output2);
        Assert.DoesNotContain("profiling", output2);
        Assert.DoesNotContain("training:", output2);
    }

    [Fact]
    public void WithoutTheBf16RunTheReportSaysWhy()
    {
        var (code, output) = CliProcess.Jetpack("study", "--smoke", "--out", dir, "--threads", "1", "--bf16", "off",
                                                "--only", "soft_moe_scratch", "jetpack");
        Assert.True(code == 0, output);
        var md = File.ReadAllText(Path.Combine(dir, "results.md"));
        Assert.Contains("## Notes", md);
        Assert.Contains("--bf16 off", md);
        Assert.DoesNotContain("step time bf16 / fp32", md);
        Assert.False(Directory.Exists(Path.Combine(dir, "runs", "jetpack_bf16")));
    }

    [Fact]
    public void SeedsRepeatEveryRowAndTheReportGivesIntervalsAndPairedDifferences()
    {
        var (code, output) = CliProcess.Jetpack("study", "--smoke", "--out", dir, "--threads", "1", "--seeds", "2",
                                                "--only", "soft_moe_scratch", "dense_upstream", "jetpack", "recycle_random");
        Assert.True(code == 0, output);
        // seed 1 keeps the one-seed folders, seed 2 has its own (its own recycling draw too); the upstream is shared
        Assert.True(File.Exists(Path.Combine(dir, "runs", "jetpack", "metrics.jsonl")));
        Assert.True(File.Exists(Path.Combine(dir, "seeds", "seed1", "runs", "jetpack", "metrics.jsonl")));
        Assert.True(File.Exists(Path.Combine(dir, "seeds", "seed1", "init", "v_jetmoe_fmnist_importance-l2.safetensors")));
        Assert.False(Directory.Exists(Path.Combine(dir, "seeds", "upstream1")));
        using (var a = Jetpack.Model.Checkpoints.SafetensorsReader.Open(Path.Combine(dir, "init", "v_jetmoe_fmnist_importance-l2.safetensors")))
        using (var b = Jetpack.Model.Checkpoints.SafetensorsReader.Open(Path.Combine(dir, "seeds", "seed1", "init", "v_jetmoe_fmnist_importance-l2.safetensors")))
            Assert.NotEqual(a.Metadata[Jetpack.Application.Recycling.RecycleMetadata.Seed], b.Metadata[Jetpack.Application.Recycling.RecycleMetadata.Seed]);

        var md = File.ReadAllText(Path.Combine(dir, "results.md"));
        Assert.Contains("## Claims with 95 % confidence (2 seeds)", md);
        Assert.Contains("MoE Jetpack > Soft MoE from scratch", md);
        Assert.Contains("importance sampling > random selection", md);
        Assert.Contains(" ± ", md);

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal(2, json.RootElement.GetProperty("seeds").GetInt32());
        foreach (var row in json.RootElement.GetProperty("rows").EnumerateArray())
        {
            var seeds = row.GetProperty("per_seed").EnumerateArray().Select(s => s.GetProperty("top1").GetDouble()).ToList();
            Assert.Equal(2, seeds.Count);
            var top1 = row.GetProperty("top1");
            Assert.Equal(seeds.Average(), top1.GetProperty("mean").GetDouble(), 12);
            Assert.True(top1.GetProperty("lo").GetDouble() <= top1.GetProperty("mean").GetDouble());
        }
        var jet = json.RootElement.GetProperty("rows").EnumerateArray().Single(r => r.GetProperty("id").GetString() == "jetpack");
        Assert.Equal(2, jet.GetProperty("delta_vs_soft_moe").GetProperty("n").GetInt32());
    }

    [Fact]
    public void Table4TrainsTheGridItIsAskedForAndPlotsAccuracyAgainstExperts()
    {
        var (code, output) = CliProcess.Jetpack("study", "--smoke", "--out", dir, "--threads", "1", "--only", "t4_l2_e6", "t4_l6_e24");
        Assert.True(code == 0, output);
        var md = File.ReadAllText(Path.Combine(dir, "results.md"));
        Assert.Contains("## Table 4", md);
        Assert.Contains("| last 2 blocks | 6/12 |", md);
        Assert.Contains("| last 6 blocks | 24/48 |", md);
        Assert.True(File.Exists(Path.Combine(dir, "table4_experts.png")));
        Assert.True(File.Exists(Path.Combine(dir, "init", "v_jetmoe_fmnist_l6_e24_importance-l2.safetensors")));
    }

    [Fact]
    public void UnknownRunIsRefusedByName()
    {
        var (code, output) = CliProcess.Jetpack("study", "--smoke", "--out", dir, "--only", "jetpak");
        Assert.Equal(2, code);
        Assert.Contains("jetpak", output);
    }
}
