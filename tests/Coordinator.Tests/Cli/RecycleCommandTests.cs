using System.Text.Json;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Registry;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>`jetpack recycle` end to end on Fashion-MNIST-sized checkpoints and real Fashion-MNIST images.</summary>
public sealed class RecycleCommandTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "jetpack-recycle-" + Guid.NewGuid().ToString("N"));

    public RecycleCommandTests()
    {
        Directory.CreateDirectory(dir);
        using (var pred = ModelRegistry.Create("vit_fmnist_pred")) SafetensorsWriter.Write(File("pred.safetensors"), pred.state_dict());
        using (var target = ModelRegistry.Create("vit_fmnist_t")) SafetensorsWriter.Write(File("target.safetensors"), target.state_dict());
    }

    string File(string name) => Path.Combine(dir, name);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void RecyclesProfilesAndWritesALoadableCheckpointAReportAndIndices()
    {
        var (code, output) = CliProcess.Jetpack("recycle", "--from", File("pred.safetensors"), "--target", File("target.safetensors"),
            "--variant", "v_jetmoe_fmnist", "--profile-fashion-mnist", "--profile-classes", "0-4", "--profile-count", "256",
            "--save-stats", File("stats.safetensors"), "--out", File("moe.safetensors"));
        Assert.True(code == 0, output);
        Assert.Contains("blocks.5.mlp", output);

        var (spec, model) = ModelCheckpoint.LoadModel(File("moe.safetensors"));
        using (model) Assert.Equal("v_jetmoe_fmnist", spec.Variant);
        using (var reader = SafetensorsReader.Open(File("moe.safetensors")))
        {
            Assert.Equal("importance-l2", reader.Metadata["recycle.method"]);
            Assert.StartsWith("vit_fmnist_pred:", reader.Metadata["recycle.predecessor"]);
            Assert.All(Jetpack.Application.Recycling.RecycleMetadata.Keys, k => Assert.True(reader.Metadata.ContainsKey(k), $"metadata '{k}' missing"));
        }
        using var report = JsonDocument.Parse(System.IO.File.ReadAllText(File("moe.report.json")));
        Assert.Equal(3, report.RootElement.GetProperty("layers").GetArrayLength());
        Assert.Equal(256, report.RootElement.GetProperty("profiled_images").GetInt64());
        var layer = report.RootElement.GetProperty("layers")[0];
        Assert.Equal(72, layer.GetProperty("experts").GetArrayLength());
        Assert.True(layer.GetProperty("hidden_mass").GetProperty("mean").GetDouble() > 0.4);  // 256 of 512 units, weighted towards the important
        using (var indices = SafetensorsReader.Open(File("moe.indices.safetensors")))
            Assert.Equal([72, 256], indices.GetEntry("blocks.3.mlp.hidden").Shape);

        // the saved statistics reproduce the same checkpoint without profiling
        var (code2, output2) = CliProcess.Jetpack("recycle", "--from", File("pred.safetensors"), "--target", File("target.safetensors"),
            "--variant", "v_jetmoe_fmnist", "--stats", File("stats.safetensors"), "--out", File("moe2.safetensors"));
        Assert.True(code2 == 0, output2);
        using var a = SafetensorsReader.Open(File("moe.indices.safetensors"));
        using var b = SafetensorsReader.Open(File("moe2.indices.safetensors"));
        using var ha = a.ReadTensor("blocks.4.mlp.hidden");
        using var hb = b.ReadTensor("blocks.4.mlp.hidden");
        Assert.True(ha.eq(hb).all().item<bool>());
    }

    /// <summary>The coordinator's child gets its recipe as a typed task file (the job spec's recycle fields), and the same recipe as options gives the same experts.</summary>
    [Fact]
    public void ATaskFileCarriesTheWholeRecipeAndMatchesTheOptions()
    {
        var task = new Jetpack.Coordinator.Recycling.RecycleTask
        {
            Model = "v_jetmoe_fmnist", Out = File("task.safetensors"), Threads = 1,
            Recycle = new Jetpack.Coordinator.Jobs.RecycleSpec { From = File("pred.safetensors"), Target = File("target.safetensors"), Method = "random", Seed = 9 },
        };
        System.IO.File.WriteAllText(File("recycle.json"), task.ToJson());
        var (code, output) = CliProcess.Jetpack("recycle", "--task", File("recycle.json"));
        Assert.True(code == 0, output);
        var (code2, output2) = CliProcess.Jetpack("recycle", "--from", File("pred.safetensors"), "--target", File("target.safetensors"),
            "--variant", "v_jetmoe_fmnist", "--method", "random", "--seed", "9", "--out", File("opts.safetensors"));
        Assert.True(code2 == 0, output2);
        using (var a = SafetensorsReader.Open(File("task.indices.safetensors")))
        using (var b = SafetensorsReader.Open(File("opts.indices.safetensors")))
        using (var ha = a.ReadTensor("blocks.3.mlp.hidden"))
        using (var hb = b.ReadTensor("blocks.3.mlp.hidden"))
            Assert.True(ha.eq(hb).all().item<bool>());

        // an option beside the task would be silently ignored: refused, naming it; a bad field in the file names the file and field
        var (code3, output3) = CliProcess.Jetpack("recycle", "--task", File("recycle.json"), "--seed", "3");
        Assert.Equal(2, code3);
        Assert.Contains("--seed cannot be given beside it", output3);
        System.IO.File.WriteAllText(File("bad.json"), task.ToJson().Replace("\"method\"", "\"methd\""));
        var (code4, output4) = CliProcess.Jetpack("recycle", "--task", File("bad.json"));
        Assert.Equal(2, code4);
        Assert.Contains("bad.json", output4);
        Assert.Contains("methd", output4);
        var (code5, output5) = CliProcess.Jetpack("recycle", "--variant", "v_jetmoe_fmnist", "--out", File("y.safetensors"));
        Assert.Equal(2, code5);
        Assert.Contains("--from is required", output5);
    }

    [Fact]
    public void AMissingCheckpointFailsWithExitCode2AndThePath()
    {
        var (code, output) = CliProcess.Jetpack("recycle", "--from", File("nope.safetensors"), "--target", File("target.safetensors"),
            "--variant", "v_jetmoe_fmnist", "--method", "random", "--out", File("x.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("nope.safetensors", output);
    }

    [Fact]
    public void ImportanceWithoutImagesOrStatisticsSaysWhatToGive()
    {
        var (code, output) = CliProcess.Jetpack("recycle", "--from", File("pred.safetensors"), "--target", File("target.safetensors"),
            "--variant", "v_jetmoe_fmnist", "--out", File("x.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("--profile-images", output);
        Assert.False(System.IO.File.Exists(File("x.safetensors")));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp-*"));
    }

    // Issue 12: outputs are checked before anything is loaded — a missing --from would otherwise be the error.
    [Fact]
    public void AnOutThatIsADirectoryFailsWithExitCode2BeforeLoading()
    {
        var (code, output) = CliProcess.Jetpack("recycle", "--from", File("nope.safetensors"), "--variant", "v_jetmoe_fmnist",
            "--method", "random", "--out", dir);
        Assert.Equal(2, code);
        Assert.Contains("--out", output);
        Assert.Contains("is a directory", output);
    }

    [Fact]
    public void AReportInAReadOnlyDirectoryFailsWithExitCode2BeforeLoading()
    {
        // /sys refuses new files even to root (the tests run as root, so chmod would not do).
        var (code, output) = CliProcess.Jetpack("recycle", "--from", File("nope.safetensors"), "--variant", "v_jetmoe_fmnist",
            "--method", "random", "--out", File("x.safetensors"), "--report", "/sys/jetpack-report.json");
        Assert.Equal(2, code);
        Assert.Contains("--report", output);
        Assert.Empty(Directory.GetFileSystemEntries(dir, "x.*"));
    }

    [Fact]
    public void AnOutEqualToFromIsRefusedNamingBothAndThePredecessorIsKept()
    {
        var before = System.IO.File.ReadAllBytes(File("pred.safetensors"));
        var (code, output) = CliProcess.Jetpack("recycle", "--from", File("pred.safetensors"), "--target", File("target.safetensors"),
            "--variant", "v_jetmoe_fmnist", "--method", "random", "--out", File("pred.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("--out and --from are the same file", output);
        Assert.Equal(before, System.IO.File.ReadAllBytes(File("pred.safetensors")));
    }

    // Issue 12: SIGTERM (as Ctrl-C) stops the run at its next step and deletes every temp file.
    [Fact]
    public async Task SigtermStopsTheRunWithExitCode130AndLeavesNoFiles()
    {
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "jetpack.dll"), "recycle", "--from", File("pred.safetensors"),
                                  "--target", File("target.safetensors"), "--variant", "v_jetmoe_fmnist", "--profile-fashion-mnist",
                                  "--profile-count", "4096", "--threads", "1", "--out", File("moe.safetensors") })
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        // The first line is printed once the outputs are reserved: the signal lands during loading or profiling.
        string? first = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(2));   // TimeoutException: printed nothing
        Assert.StartsWith("recycling", first);
        using (var kill = System.Diagnostics.Process.Start("kill", ["-TERM", p.Id.ToString()])) kill.WaitForExit();
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        string rest = await p.StandardOutput.ReadToEndAsync(stop.Token);
        await p.WaitForExitAsync(stop.Token);   // cancelled: it did not stop within 3 minutes of SIGTERM
        Assert.True(p.ExitCode == 130, $"exit {p.ExitCode}: {rest}{await err}");
        Assert.Contains("cancelled", rest);
        Assert.Equal(["pred.safetensors", "target.safetensors"], Directory.GetFiles(dir).Select(f => Path.GetFileName(f)).Order().ToArray());
    }
}
