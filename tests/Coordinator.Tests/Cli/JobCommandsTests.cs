using Grpc.Net.Client;
using Jetpack.Cli.Commands;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Registry;
using Jetpack.Protocol.Jobs;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Coordinator.Tests.Cli;

/// <summary>
/// `jetpack coordinator` and the job commands as real processes: a job spec is validated, the
/// coordinator recycles for real (`jetpack recycle` in a child process), and the job fails at
/// Scattering because this coordinator has no cluster token, without which no worker answers
/// (said in the message; the scatter itself is tested in Training/DriverEndToEndTests).
/// </summary>
public sealed class JobCommandsTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    /// <summary>A spec next to its checkpoints, naming them relative to itself (the CLI runs elsewhere).</summary>
    string Spec(string name, string from, string target, string extra = "")
    {
        string path = dir.File(name + ".yaml");
        Assert.Equal(dir.Path, Path.GetDirectoryName(from));
        File.WriteAllText(path, $"""
            name: {name}
            model: v_jetmoe_fmnist
            workers: 1
            recycle:
              from: {Path.GetFileName(from)}
              target: {Path.GetFileName(target)}
              method: random
              seed: 5
            recipe:
              steps: 10
              global_batch: 8
            {extra}
            """);
        return path;
    }

    [Fact]
    public async Task SubmitStatusWatchListAndCancelAgainstARealCoordinator()
    {
        string pred = dir.File("pred.safetensors"), target = dir.File("target.safetensors");
        using (var m = ModelRegistry.Create("vit_fmnist_pred")) SafetensorsWriter.Write(pred, m.state_dict());
        using (var m = ModelRegistry.Create("vit_fmnist_t")) SafetensorsWriter.Write(target, m.state_dict());
        // The worker below registers once and never heartbeats: a long timeout keeps it alive however
        // slowly a loaded machine runs the steps in between (liveness has its own tests).
        using var coordinator = new CoordinatorProcess(dir.File("data"), "--heartbeat-timeout", "600");
        string[] at = ["--coordinator", coordinator.Jobs];

        // A worker registers over gRPC, so the job gets past worker acquisition.
        using (var channel = GrpcChannel.ForAddress(coordinator.Jobs))
            await new WorkerRegistry.WorkerRegistryClient(channel).RegisterAsync(new RegisterWorkerRequest { WorkerId = "w0", Endpoint = "http://127.0.0.1:1", Slots = 1 });

        var (code, output) = CliProcess.Jetpack(["submit", Spec("cli-job", pred, target), .. at]);
        Assert.True(code == ExitCodes.Ok, output);
        Assert.Contains("submitted: cli-job", output);

        (code, output) = CliProcess.Jetpack(["watch", "cli-job", .. at]);
        Assert.True(code == ExitCodes.JobFailed, output);
        Assert.Contains("recycling", output);
        Assert.Contains("scattering", output);
        Assert.Contains("scatter: the coordinator has no cluster token", output);

        (code, output) = CliProcess.Jetpack(["status", "cli-job", .. at]);
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Matches(@"phase\s+failed", output);
        string checkpoint = System.Text.RegularExpressions.Regex.Match(output, @"checkpoint\s+(\S+\.safetensors)").Groups[1].Value;
        var (spec, model) = ModelCheckpoint.LoadModel(checkpoint);   // the real recycled MoE checkpoint
        using (model) Assert.Equal("v_jetmoe_fmnist", spec.Variant);

        (code, output) = CliProcess.Jetpack(["list", .. at]);
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("cli-job", output);
        Assert.Contains("1 job(s)", output);

        (code, output) = CliProcess.Jetpack(["workers", .. at]);
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("w0", output);
        Assert.Contains("1 worker(s), 1 alive", output);

        // cancel of an ended job: unchanged, exit 0; unknown job: exit 4; conflicting spec: exit 5
        (code, output) = CliProcess.Jetpack(["cancel", "cli-job", .. at]);
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("failed", output);
        (code, output) = CliProcess.Jetpack(["status", "nope", .. at]);
        Assert.Equal(ExitCodes.NotFound, code);
        Assert.Contains("job 'nope' not found", output);
        (code, output) = CliProcess.Jetpack(["submit", Spec("cli-job", pred, target, "eval_every: 7"), .. at]);
        Assert.Equal(ExitCodes.Conflict, code);
        Assert.Contains("already exists", output);
    }

    [Fact]
    public void AnInvalidSpecFailsBeforeContactingTheCoordinatorAndNamesTheField()
    {
        string pred = JobSpecs.Checkpoint(dir, "p.safetensors", "p");
        var (code, output) = CliProcess.Jetpack("submit", Spec("bad", pred, pred, "recipe_typo: 1"), "--coordinator", "http://127.0.0.1:1");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("bad.yaml: recipe_typo: unknown field", output);
        (code, output) = CliProcess.Jetpack("submit", Spec("ok", pred, pred), "--dry-run");
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("valid", output);
    }

    [Fact]
    public void AnUnreachableCoordinatorExitsWith3AndNamesTheAddress()
    {
        var (code, output) = CliProcess.Jetpack("list", "--coordinator", $"http://127.0.0.1:{FreePort.Next()}", "--timeout", "5");
        Assert.Equal(ExitCodes.Unavailable, code);
        Assert.Contains("not reachable", output);
    }

    [Fact]
    public void EveryJobCommandHasHelp()
    {
        foreach (var command in new[] { "coordinator", "submit", "status", "watch", "cancel", "list", "workers" })
        {
            var (code, output) = CliProcess.Jetpack(command, "--help");
            Assert.True(code == 0, output);
            Assert.Contains("Usage:", output);
            Assert.Contains(command == "coordinator" ? "--clustering" : "--coordinator", output);
        }
    }
}
