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

    /// <summary>
    /// Routing statistics from the workers (issue 19): `train --workers 2` writes rank 0's routing summary
    /// (merged over both ranks' slices) into metrics.jsonl, equal to a single-process `train` of the same
    /// deterministic config, with the same losses.
    /// </summary>
    [Fact]
    public void TwoWorkersWriteTheSingleProcessRoutingIntoMetrics()
    {
        string Config(string name) => $$"""
            {
              "model": "v_jetmoe_fmnist", "deterministic": true,
              "data": { "dataset": "fashion-mnist", "classes": "0-4", "max_per_class": 12, "eval_limit": 40, "augment": false },
              "recipe": { "steps": 2, "global_batch": 8, "warmup_steps": 1, "seed": 3 },
              "checkpoint_every": 10, "out": "{{Path.Combine(dir, name)}}"
            }
            """;
        File.WriteAllText(Path.Combine(dir, "one.json"), Config("one"));
        File.WriteAllText(Path.Combine(dir, "two.json"), Config("two"));
        var (code, output) = CliProcess.Jetpack("train", "--config", Path.Combine(dir, "one.json"));
        Assert.True(code == 0, output);
        var (code2, output2) = CliProcess.Jetpack("train", "--config", Path.Combine(dir, "two.json"), "--workers", "2");
        Assert.True(code2 == 0, output2);

        var expected = Training.DriverCluster.RoutingOf(Path.Combine(dir, "one"));
        Assert.Equal(2, expected.Count);
        Assert.All(expected, step => Assert.Equal(3, step.Count));                      // v_jetmoe_fmnist: 3 MoE layers
        double deviation = Training.DriverCluster.AssertSameRouting(expected, Path.Combine(dir, "two"), "train --workers 2");
        Console.WriteLine($"routing: largest relative deviation from the single process {deviation:E2}");
        var one = Training.DriverCluster.Losses(Path.Combine(dir, "one"));
        Training.DriverCluster.AssertSameLosses(one.Select(l => l.Loss).ToList(), Training.DriverCluster.Losses(Path.Combine(dir, "two")), "train --workers 2");
    }

    [Fact]
    public void ANegativeWorkerCountIsRefused()
    {
        var (code, output) = CliProcess.Jetpack("train", "--config", "/nonexistent.json", "--workers", "-1");
        Assert.NotEqual(0, code);
        Assert.Contains("--workers must be ≥ 0", output);
    }
}
