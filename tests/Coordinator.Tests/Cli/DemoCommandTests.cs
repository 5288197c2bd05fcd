using System.Text.Json;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>
/// `jetpack demo --smoke` end to end on real Fashion-MNIST: upstream models, the in-process
/// coordinator recycling, scattering and training a submitted job on 2 registered worker processes,
/// baselines, the result table, results.md/json and the convergence plot.
/// </summary>
public sealed class DemoCommandTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "jetpack-demo-" + Guid.NewGuid().ToString("N"));

    public void Dispose() { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }

    [Fact]
    public void RunsEveryStageAndWritesTheTableAndThePlot()
    {
        var (code, output) = CliProcess.Jetpack("demo", "--smoke", "--out", dir, "--threads", "1");
        Assert.True(code == 0, output);
        Assert.Contains("workers joined", output);                           // 2 jetpack-worker processes registered with the coordinator
        Assert.Contains("recycled checkpoint", output);                      // the coordinator's job recycled it …
        Assert.Matches(@"job fmnist-demo-\S+\s+completed\s+step 4/4", output);   // … scattered it and trained it on the workers
        Assert.Matches(@"│ MoE Jetpack .*│ recycled \(importance-L2\).*│ \d+\.\d\d% .*│ 4 ", output);   // the printed table
        foreach (var f in new[] { "results.md", "results.json", "convergence.png", "runs/jetpack/final.safetensors", "runs/jetpack/checkpoint/manifest.json",
                                  "upstream/vit_fmnist_pred/final.safetensors", "upstream/vit_fmnist_t/final.safetensors" })
            Assert.True(File.Exists(Path.Combine(dir, f)), $"{f} missing");
        var png = File.ReadAllBytes(Path.Combine(dir, "convergence.png"));
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "results.json")));
        var runs = json.RootElement.GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal(["jetpack", "dense_scratch", "soft_moe_scratch"], runs.Select(r => r.GetProperty("id").GetString()));
        foreach (var run in runs)
        {
            Assert.Equal(4, run.GetProperty("steps").GetInt64());
            Assert.InRange(run.GetProperty("top1").GetDouble(), 0, 1);
            Assert.True(run.GetProperty("seconds").GetDouble() > 0);
        }
        Assert.Equal(2, json.RootElement.GetProperty("workers").GetInt32());
        // the Jetpack run was trained by 2 ranks (its topology-free checkpoint says so)
        Assert.Contains("\"world_size\": 2", File.ReadAllText(Path.Combine(dir, "runs/jetpack/checkpoint/manifest.json")));
    }
}
