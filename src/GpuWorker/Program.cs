using System.Diagnostics;
using Jetpack.GpuWorker.Hosting;
using Jetpack.Protocol.Control;

// jetpack-worker: one rank of an expert-parallel job (DESIGN.md, "Processes and projects").
Jetpack.Model.Torch.TorchRuntime.Configure(); // before any tensor exists
WorkerOptions options;
try
{
    options = WorkerCommandLine.Parse(args);
}
catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or InvalidDataException)
{
    Console.Error.WriteLine($"jetpack-worker: {e.Message}");
    return 2;
}
if (options.Threads > 0) TorchSharp.torch.set_num_threads(options.Threads);
// The job thread blocks in the exchange while its sends, receives and Kestrel's handlers run on the
// pool: start with enough pool threads that no step waits for the pool's slow thread injection.
ThreadPool.SetMinThreads(Math.Max(16, Environment.ProcessorCount), Math.Max(16, Environment.ProcessorCount));

await using var node = await WorkerNode.StartAsync(options);
// A worker of a coordinator registers and heartbeats; the coordinator hands it runs (JoinJob).
await using var link = options.Coordinator is { } c ? CoordinatorLink.Start(node, c, options.Token) : null;
// The launcher waits for this line (and then for Health) before it trusts the worker.
Console.WriteLine($"{WorkerReadiness.Prefix} rank={options.Rank} world={options.WorldSize} address={node.Address} metrics={node.MetricsAddress} pid={Environment.ProcessId}" +
                  (link is null ? "" : $" worker={link.WorkerId} coordinator={options.Coordinator!.Address}"));

var exit = new TaskCompletionSource<int>();
using var stopping = node.Stopping.Register(() => exit.TrySetResult(0));
Console.CancelKeyPress += (_, e) => { e.Cancel = true; exit.TrySetResult(0); };
if (options.ParentPid is int parent)
{
    _ = Task.Run(async () =>
    {
        try { await Process.GetProcessById(parent).WaitForExitAsync(); } catch (ArgumentException) { /* already gone */ }
        Console.Error.WriteLine($"jetpack-worker rank {options.Rank}: launcher (pid {parent}) exited; stopping");
        exit.TrySetResult(3);
    });
}
return await exit.Task;
