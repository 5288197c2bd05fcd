using System.Text.Json;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>`jetpack bench scaling --quick` between real worker processes (TCP data plane) and `jetpack plan` on its fit (issue 19).</summary>
public class ScalingCommandsTests
{
    [Fact]
    public void QuickScalingBenchWritesItsRowsAndPlanProjectsFromTheFit()
    {
        var dir = Directory.CreateTempSubdirectory("jetpack-scaling-").FullName;
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            // under a minute on an idle machine (docs/scaling.md); 3 minutes here bounds a loaded 2-core machine and fails a regression
            var (code, output) = CliProcess.JetpackWithin(TimeSpan.FromMinutes(3), new Dictionary<string, string?>(), "bench", "scaling", "--quick", "--out", dir);
            Assert.True(code == 0, output);
            Assert.Contains("ranks outnumber cores", File.ReadAllText(Path.Combine(dir, "bench-scaling.md")), StringComparison.OrdinalIgnoreCase);
            Assert.True(new FileInfo(Path.Combine(dir, "bench-scaling.png")).Length > 1000);
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "bench-scaling.json")));
            var rows = doc.RootElement.GetProperty("rows").EnumerateArray().ToList();
            Assert.Equal(4, rows.Count);                                            // {72, 147} experts × {1, 2} processes
            foreach (var r in rows)
            {
                int ranks = r.GetProperty("ranks").GetInt32();
                Assert.True(r.GetProperty("step_seconds").GetDouble() > 0);
                Assert.Equal(ranks, r.GetProperty("peak_rss_mb_per_rank").GetArrayLength());
                Assert.Equal(ranks, r.GetProperty("compute_seconds_per_rank").GetArrayLength());
                Assert.Equal(ranks == 1, r.GetProperty("exchange_bytes_per_step").GetDouble() == 0);
                double share = r.GetProperty("busiest_expert_combine_share").GetDouble();
                Assert.InRange(share, 1.0 / r.GetProperty("experts").GetInt32(), 1.0);
            }
            // expert state per rank halves from 1 to 2 ranks (±5 %: whole experts)
            foreach (int e in new[] { 72, 147 })
            {
                double one = rows.Single(r => r.GetProperty("experts").GetInt32() == e && r.GetProperty("ranks").GetInt32() == 1).GetProperty("expert_state_bytes_per_rank").GetDouble();
                double two = rows.Single(r => r.GetProperty("experts").GetInt32() == e && r.GetProperty("ranks").GetInt32() == 2).GetProperty("expert_state_bytes_per_rank").GetDouble();
                Assert.InRange(two / one, 0.475, 0.525);
            }
            Assert.True(doc.RootElement.GetProperty("fit").GetProperty("thread_gflops").GetDouble() > 0);
            Console.WriteLine($"bench scaling --quick took {clock.Elapsed.TotalSeconds:F0} s");
            Assert.Equal(1, doc.RootElement.GetProperty("timed_steps").GetInt32());
            Assert.Equal(8, doc.RootElement.GetProperty("batch").GetInt32());

            var (planCode, plan) = CliProcess.Jetpack("plan", "--model", "v_jetmoe_t", "--gpus", "8", "--gpu-tflops", "100", "--link-gbps", "200",
                                                      "--fit", Path.Combine(dir, "bench-scaling.json"));
            Assert.True(planCode == 0, plan);
            Assert.Contains("fastest: G = ", plan);
            var (badCode, bad) = CliProcess.Jetpack("plan", "--model", "v_jetmoe_t", "--gpus", "8", "--gpu-tflops", "100", "--link-gbps", "200",
                                                    "--expert-parallel", "3", "--fit", Path.Combine(dir, "bench-scaling.json"));
            Assert.Equal(2, badCode);
            Assert.Contains("--expert-parallel", bad);

            // a mapping as the model, as everywhere else --model is taken
            var (mapCode, mapped) = CliProcess.Jetpack("plan", "--model", "{base: v_jetmoe_t, core_experts: 392, universal_experts: 784}", "--gpus", "8", "--gpu-tflops", "100",
                                                       "--link-gbps", "200", "--fit", Path.Combine(dir, "bench-scaling.json"));
            Assert.True(mapCode == 0, mapped);
            Assert.Contains("392 core", mapped);

            // --refit measures nothing and fits the same rows to the same constants
            var refitDir = Path.Combine(dir, "refit");
            var (refitCode, refit) = CliProcess.Jetpack("bench", "scaling", "--refit", Path.Combine(dir, "bench-scaling.json"), "--out", refitDir);
            Assert.True(refitCode == 0, refit);
            using var again = JsonDocument.Parse(File.ReadAllText(Path.Combine(refitDir, "bench-scaling.json")));
            Assert.Equal(doc.RootElement.GetProperty("fit").GetProperty("thread_gflops").GetDouble(), again.RootElement.GetProperty("fit").GetProperty("thread_gflops").GetDouble(), 9);
            Assert.Equal(rows.Count, again.RootElement.GetProperty("rows").GetArrayLength());
            Assert.Contains("Refitted", File.ReadAllText(Path.Combine(refitDir, "bench-scaling.md")));
            var (missingCode, missing) = CliProcess.Jetpack("bench", "scaling", "--refit", Path.Combine(dir, "nothing.json"), "--out", refitDir);
            Assert.Equal(2, missingCode);
            Assert.Contains("--refit", missing);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
