using System.Text.Json;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>`jetpack train` on real Fashion-MNIST images: metrics, checkpoint, plot, resume, config errors.</summary>
public sealed class TrainCommandTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "jetpack-train-" + Guid.NewGuid().ToString("N"));

    public TrainCommandTests() => Directory.CreateDirectory(dir);
    public void Dispose() => Directory.Delete(dir, recursive: true);

    string Config(long steps, string extra = "")
    {
        var path = Path.Combine(dir, $"config-{steps}.json");
        File.WriteAllText(path, $$"""
            {
              "model": "vit_fmnist_t",
              "data": { "dataset": "fashion-mnist", "classes": "0-4", "max_per_class": 40, "eval_limit": 100 },
              "recipe": { "steps": {{steps}}, "global_batch": 16, "warmup_steps": 2, "mixup": {}{{extra}} },
              "eval_every": 2, "checkpoint_every": 2, "out": "{{Path.Combine(dir, "out")}}"
            }
            """);
        return path;
    }

    static List<JsonElement> Metrics(string path) =>
        File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    [Fact]
    public void TrainsWritesMetricsCheckpointAndPlotAndResumesExactly()
    {
        var (code, output) = CliProcess.Jetpack("train", "--config", Config(4));
        Assert.True(code == 0, output);
        var outDir = Path.Combine(dir, "out");
        foreach (var f in new[] { "final.safetensors", "metrics.jsonl", "convergence.png", "checkpoint/manifest.json" })   // the topology-free checkpoint (engine-model)
            Assert.True(File.Exists(Path.Combine(outDir, f)), $"{f} missing");
        var first = Metrics(Path.Combine(outDir, "metrics.jsonl"));
        Assert.Equal(4, first.Count);
        Assert.True(first[3].GetProperty("top1").GetDouble() >= 0);

        // a 6-step run stopped at step 4 and resumed equals the 6-step run made in one go
        Directory.Delete(outDir, recursive: true);
        var (code2, output2) = CliProcess.Jetpack("train", "--config", Config(6), "--until", "4");
        Assert.True(code2 == 0, output2);
        Assert.Contains("stopped at step 4 of 6", output2);
        var (code3, output3) = CliProcess.Jetpack("train", "--config", Config(6), "--resume");
        Assert.True(code3 == 0, output3);
        Assert.Contains("resumed at step 4", output3);
        var resumed = Metrics(Path.Combine(outDir, "metrics.jsonl")).Select(m => m.GetProperty("loss").GetDouble()).ToList();
        Directory.Delete(outDir, recursive: true);
        var (code4, output4) = CliProcess.Jetpack("train", "--config", Config(6));
        Assert.True(code4 == 0, output4);
        var straight = Metrics(Path.Combine(outDir, "metrics.jsonl")).Select(m => m.GetProperty("loss").GetDouble()).ToList();
        Assert.Equal(6, straight.Count);
        Assert.Equal(straight, resumed);
    }

    [Fact]
    public void AYamlConfigTrainsAndItsErrorsNameTheField()
    {
        var yaml = Path.Combine(dir, "run.yaml");
        File.WriteAllText(yaml, $"""
            # the same fields as JSON, snake_case
            model: vit_fmnist_t
            data:
              classes: 0-4
              max_per_class: 20
              eval_limit: 50
              rand_augment: false
              crop_min_scale: 0.5
            recipe:
              steps: 2
              global_batch: 10
              warmup_steps: 1
            eval_every: 2
            checkpoint_every: 2
            out: {Path.Combine(dir, "yaml-out")}
            """);
        var (code, output) = CliProcess.Jetpack("train", "--config", yaml);
        Assert.True(code == 0, output);
        Assert.Equal(2, Metrics(Path.Combine(dir, "yaml-out", "metrics.jsonl")).Count);

        File.WriteAllText(yaml, File.ReadAllText(yaml).Replace("  warmup_steps: 1", "  warmup_stepz: 1"));
        (code, output) = CliProcess.Jetpack("train", "--config", yaml);
        Assert.Equal(2, code);
        Assert.Contains("run.yaml", output);
        Assert.Contains("recipe.warmup_stepz", output);
    }

    [Fact]
    public void AnUnknownConfigFieldIsNamed()
    {
        var (code, output) = CliProcess.Jetpack("train", "--config", Config(4, ", \"stepz\": 3"));
        Assert.Equal(2, code);
        Assert.Contains("stepz", output);
        Assert.Contains("config-4.json", output);
    }

    [Fact]
    public void AnOutOfRangeFieldIsNamed()
    {
        var (code, output) = CliProcess.Jetpack("train", "--config", Config(4, ", \"accumulation\": 3"));
        Assert.Equal(2, code);
        Assert.Contains("recipe.accumulation", output);
    }
}
