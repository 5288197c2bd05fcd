using System.CommandLine;
using Spectre.Console;
using Jetpack.Application.Data;

namespace Jetpack.Cli.Commands;

/// <summary><c>jetpack data pack</c>: a class-folder tree (train/, val/) into WebDataset tar shards for <c>data.dataset: shards</c>.</summary>
public static class DataCommand
{
    public static Command Create()
    {
        var from = new Option<string>("--from") { Description = "the class-folder tree: train/<class>/*.JPEG and val/<class>/*", Required = true };
        var output = new Option<string>("--out") { Description = "where train-000000.tar …, val-*.tar, classes.txt, skipped.txt and pack-state.json go", Required = true };
        var shardSize = new Option<string>("--shard-size") { Description = "largest shard: 1GB, 512MiB, … (decimal units are powers of 1000, KiB/MiB/GiB of 1024)", DefaultValueFactory = _ => "1GB" };
        var pack = new Command("pack", "Convert a class-folder tree into tar shards (WebDataset: key.jpg + key.cls). Every image is decoded first; undecodable ones are left out and listed in skipped.txt. Resumable: rerun the same command after an interruption.")
        {
            from, output, shardSize,
        };
        pack.SetAction((r, cancel) => Task.FromResult(Pack(r.GetValue(from)!, r.GetValue(output)!, ShardPacker.ParseSize(r.GetValue(shardSize)!), cancel)));
        return new Command("data", "Dataset tools.") { pack };
    }

    static int Pack(string from, string outDir, long shardBytes, CancellationToken cancel)
    {
        PackResult result = null!;
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("packing", maxValue: 1);
                var progress = new Progress(p => { task.MaxValue = p.Total; task.Value = p.Done; task.Description = $"packing {p.Done:N0}/{p.Total:N0}"; });
                result = ShardPacker.Pack(from, outDir, shardBytes, progress, cancel);
                task.Value = task.MaxValue;
            });
        if (result.Resumed > 0) AnsiConsole.MarkupLine($"resumed after {result.Resumed:N0} images already packed");
        foreach (var (split, n) in result.Written) AnsiConsole.MarkupLine($"{split}: {n:N0} images written in this run");
        AnsiConsole.MarkupLine($"{result.Shards.Count} shards in {Markup.Escape(outDir)}; {result.Skipped.Count} undecodable images skipped{(result.Skipped.Count > 0 ? " (skipped.txt)" : "")}");
        foreach (var s in result.Skipped.Take(10)) AnsiConsole.MarkupLine($"  [yellow]{Markup.Escape(s)}[/]");
        return 0;
    }

    // Reports synchronously on the packing thread (System.Progress would post to the thread pool).
    sealed class Progress(Action<(long Done, long Total)> report) : IProgress<(long Done, long Total)>
    {
        public void Report((long Done, long Total) value) => report(value);
    }
}
