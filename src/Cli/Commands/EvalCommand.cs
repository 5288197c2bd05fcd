using Jetpack.Application.Runs;
using System.CommandLine;
using System.Text.Json;
using Jetpack.Coordinator.Jobs;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Torch;
using Jetpack.Model.Training;
using Spectre.Console;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Cli.Commands;

/// <summary>
/// <c>jetpack eval --model F.safetensors</c>: top-1, top-5 and mean cross-entropy of a model
/// checkpoint on the test split of a dataset (the classes of a run's config, or --dataset/--classes),
/// with <see cref="Trainer.Evaluate"/>, the code the training's own evaluations run.
/// </summary>
public static class EvalCommand
{
    static readonly Option<string> ModelFile = new("--model") { Description = "a model checkpoint (.safetensors with Jetpack metadata: final.safetensors, `jetpack export`, `jetpack recycle`)", Required = true };
    static readonly Option<string?> Config = new("--config") { Description = "take the data (dataset, root, classes) from a `jetpack train` config or a job spec (YAML or JSON)" };
    static readonly Option<string?> Dataset = new("--dataset") { Description = "fashion-mnist, cifar10 or cifar100 (default fashion-mnist; excludes --config)" };
    static readonly Option<string?> Classes = new("--classes") { Description = "only these classes, renumbered from 0 as in training, e.g. 5-9 (excludes --config)" };
    static readonly Option<string?> Root = new("--root") { Description = "dataset root (CIFAR binary batches)" };
    static readonly Option<int?> Limit = new("--limit") { Description = "evaluate the first N test images (default: all)" };
    static readonly Option<bool> Json = new("--json") { Description = "print one JSON object (model, dataset, classes, images, top1, top5, loss)" };

    public static Command Create()
    {
        var cmd = new Command("eval", "Top-1, top-5 and loss of a model checkpoint on the test split. Exit code 2 for a bad file, option or config.")
        {
            ModelFile, Config, Dataset, Classes, Root, Limit, Json, CommonOptions.Device, CommonOptions.Threads,
        };
        cmd.SetAction(r => Run(r));
        return cmd;
    }

    static int Run(ParseResult r)
    {
        string path = r.GetValue(ModelFile)!;
        if (!File.Exists(path)) throw new FileNotFoundException($"--model: file not found: {path}", path);
        if (r.GetValue(Limit) is < 1) throw new ArgumentException($"--limit must be ≥ 1, got {r.GetValue(Limit)}");
        var data = DataOf(r);
        var device = Devices.Parse(r.GetValue(CommonOptions.Device)!);
        CommonOptions.ApplyThreads(r.GetValue(CommonOptions.Threads));

        var (variant, result) = Evaluate(path, data, r.GetValue(Limit), device);
        if (r.GetValue(Json))
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                model = path, variant, dataset = data.Dataset, classes = data.Classes, images = result.Images,
                top1 = result.Top1, top5 = result.Top5, loss = result.Loss,
            }));
        else
            AnsiConsole.MarkupLine(Markup.Escape($"{path} ({variant}) on {result.Images} test images of {data.Dataset}{(data.Classes is null ? "" : $" classes {data.Classes}")}: ") +
                                   $"top-1 [bold]{100 * result.Top1:F2}%[/], top-5 {100 * result.Top5:F2}%, loss {result.Loss:F4}");
        return ExitCodes.Ok;
    }

    /// <summary>Evaluates the model in <paramref name="path"/> on the test split of <paramref name="data"/> (the first <paramref name="limit"/> images; null = all).</summary>
    public static (string Variant, EvalResult Result) Evaluate(string path, RunData data, int? limit, TorchSharp.torch.Device device)
    {
        var (spec, model) = ModelCheckpoint.LoadModel(path, device);
        using var _ = model;
        var (_, test) = RunDatasets.Open(data);
        int classes = spec.Vit?.NumClasses ?? spec.ConvNeXt!.NumClasses;
        // fewer is fine: a run on classes 5-9 trains labels 0-4 of a 10-way head, as training does
        if (test.NumClasses > classes)
            throw new ArgumentException($"{path}: {spec.Variant} has {classes} classes, the data ({data.Dataset}, classes {data.Classes ?? "all"}) has {test.NumClasses}: give --classes or --config");
        using var trainer = new Trainer(spec, model, test, new TrainerOptions { Steps = 1 }, device);   // no step is taken: its Evaluate only
        return (spec.Variant, trainer.Evaluate(test, limit: limit));
    }

    /// <summary>The data: a config's (a `jetpack train` config, else a job spec), or the options'.</summary>
    static RunData DataOf(ParseResult r)
    {
        if (r.GetValue(Config) is not { } config)
        {
            var d = new RunData { Dataset = r.GetValue(Dataset) ?? "fashion-mnist", Classes = r.GetValue(Classes), Root = r.GetValue(Root) };
            if (d.Dataset is not ("fashion-mnist" or "cifar10" or "cifar100")) throw new ArgumentException($"--dataset must be fashion-mnist, cifar10 or cifar100, got '{d.Dataset}'");
            if (d.Dataset != "fashion-mnist" && d.Root is null) throw new ArgumentException($"--root is required for {d.Dataset}");
            return d;
        }
        if (r.GetValue(Dataset) is not null || r.GetValue(Classes) is not null)
            throw new ArgumentException("--config names the data already: leave out --dataset and --classes");
        if (!File.Exists(config)) throw new FileNotFoundException($"--config: file not found: {config}", config);
        // a job spec's fields are a train config's plus its own: read as a job spec, either parses
        return JobSpecReader.Parse(JobSpecReader.ReadText(config), JobSpecReader.FormatOf(config), config).Data;
    }
}
