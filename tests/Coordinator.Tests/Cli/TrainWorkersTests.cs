using System.Text.Json;
using Jetpack.Model.Checkpoints;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>`jetpack train --workers N`: the same command in N worker processes; its checkpoint resumes with another N.</summary>
public sealed class TrainWorkersTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "jetpack-train-workers-" + Guid.NewGuid().ToString("N"));

    public TrainWorkersTests() => Directory.CreateDirectory(dir);
    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void TrainsOnTwoWorkersStopsAndResumesOnThree()
    {
        var config = Path.Combine(dir, "config.json");
        var outDir = Path.Combine(dir, "out");
        File.WriteAllText(config, $$"""
            {
              "model": "v_jetmoe_fmnist",
              "data": { "dataset": "fashion-mnist", "classes": "0-4", "max_per_class": 12, "eval_limit": 40, "augment": false },
              "recipe": { "steps": 3, "global_batch": 12, "warmup_steps": 1 },
              "checkpoint_every": 10, "out": "{{outDir}}"
            }
            """);
        var (code, output) = CliProcess.Jetpack("train", "--config", config, "--workers", "2", "--until", "2");
        Assert.True(code == 0, output);
        Assert.Contains("on 2 worker processes", output);
        Assert.Contains("stopped at step 2 of 3", output);
        var manifest = TrainingCheckpoint.ReadManifest(Path.Combine(outDir, "checkpoint"));
        Assert.Equal((2, 2L), (manifest.WorldSize, manifest.Step));

        var (code2, output2) = CliProcess.Jetpack("train", "--config", config, "--workers", "3", "--resume");
        Assert.True(code2 == 0, output2);
        Assert.Contains("resuming at step 2", output2);
        foreach (var f in new[] { "final.safetensors", "metrics.jsonl", "convergence.png", "checkpoint/manifest.json" })
            Assert.True(File.Exists(Path.Combine(outDir, f)), $"{f} missing");
        var lines = File.ReadAllLines(Path.Combine(outDir, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal([1L, 2L, 3L], lines.Select(l => l.GetProperty("step").GetInt64()));
        Assert.Equal(3, lines[2].GetProperty("workers").GetInt32());
        Assert.All(lines, l => Assert.True(l.GetProperty("exchange_s").GetDouble() > 0, "a step with 2–3 workers exchanges slots"));
        Assert.Equal(3, TrainingCheckpoint.ReadManifest(Path.Combine(outDir, "checkpoint")).WorldSize);
    }

    [Fact]
    public void ANegativeWorkerCountIsRefused()
    {
        var (code, output) = CliProcess.Jetpack("train", "--config", "/nonexistent.json", "--workers", "-1");
        Assert.NotEqual(0, code);
        Assert.Contains("--workers must be ≥ 0", output);
    }
}
