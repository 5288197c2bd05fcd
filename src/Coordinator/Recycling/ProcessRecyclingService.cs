using System.Diagnostics;
using Jetpack.Coordinator.Grains.Contracts;
using Jetpack.Coordinator.Jobs;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Jetpack.Coordinator.Recycling;

/// <summary>
/// Recycles by running <c>jetpack recycle</c> (src/Cli/Commands/RecycleCommand.cs, the CLI edge of
/// <see cref="Jetpack.Application.Recycling.RecyclePipeline"/>, the one path the study also uses) as a child process. Why a process: recycling holds two dense
/// checkpoints and profiling activations (GBs for ViT-S), and TorchSharp memory is only returned
/// reliably when the process ends (ENVIRONMENT.md "Memory"); the coordinator stays small, and a
/// cancel is a kill. Output is written under &lt;key&gt;.partial/ and renamed to &lt;key&gt;/ when
/// complete, so a crash never leaves a half-written checkpoint under the final name.
/// </summary>
public sealed class ProcessRecyclingService(IOptions<RecyclingOptions> options, ILogger<ProcessRecyclingService> log) : IRecyclingService
{
    readonly RecyclingOptions options = options.Value;

    public Task<string> ComputeKeyAsync(string model, RecycleSpec spec, CancellationToken cancel) =>
        Task.Run(() => RecycleKey.Compute(model, spec, Jetpack.Model.Checkpoints.Sha256Hex.OfFile), cancel);

    public async Task<RecycledCheckpoint> RecycleAsync(RecycleRequest request, CancellationToken cancel)
    {
        string final = Path.Combine(options.Directory, request.Key);
        string model = Path.Combine(final, "model.safetensors");
        if (File.Exists(model)) return new RecycledCheckpoint(request.Key, model, Path.Combine(final, "model.report.json"), 0);

        string partial = final + ".partial";
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        Directory.CreateDirectory(partial);
        var clock = Stopwatch.StartNew();
        var psi = CommandLine(request, Path.Combine(partial, "model.safetensors"));
        string logPath = Path.Combine(partial, "recycle.log");
        log.LogInformation("recycling {Key}: {Command}", request.Key, string.Join(' ', psi.ArgumentList));

        using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start jetpack recycle");
        await using var logFile = File.CreateText(logPath);
        var stdout = PumpAsync(process.StandardOutput, logFile);
        var stderr = PumpAsync(process.StandardError, logFile);
        try
        {
            await process.WaitForExitAsync(cancel);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        await Task.WhenAll(stdout, stderr);
        await logFile.FlushAsync(cancel);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"jetpack recycle exited with {process.ExitCode} (log: {logPath}): {LastLines(await stderr + await stdout)}");
        Directory.Move(partial, final);
        return new RecycledCheckpoint(request.Key, model, Path.Combine(final, "model.report.json"), clock.Elapsed.TotalSeconds);
    }

    /// <summary>`dotnet jetpack.dll recycle --task partial/recycle.json`: the recipe travels as the typed task file.</summary>
    ProcessStartInfo CommandLine(RecycleRequest request, string outPath)
    {
        // The jetpack CLI (src/Cli) that hosts the coordinator sits beside this library.
        if (!File.Exists(options.Cli)) throw new FileNotFoundException($"recycling: the jetpack CLI is not at {options.Cli} (RecyclingOptions.Cli)", options.Cli);
        string task = Path.Combine(Path.GetDirectoryName(outPath)!, RecycleTask.FileName);
        File.WriteAllText(task, new RecycleTask { Model = request.Model, Recycle = request.Spec, Out = outPath, Threads = options.Threads }.ToJson());
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { options.Cli, "recycle", "--task", task }) psi.ArgumentList.Add(a);
        psi.Environment["COLUMNS"] = "160";
        return psi;
    }

    static async Task<string> PumpAsync(StreamReader reader, StreamWriter log)
    {
        var all = new System.Text.StringBuilder();
        while (await reader.ReadLineAsync() is { } line)
        {
            all.AppendLine(line);
            lock (log) log.WriteLine(line);
        }
        return all.ToString();
    }

    static string LastLines(string text) =>
        string.Join(" | ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(3));
}
