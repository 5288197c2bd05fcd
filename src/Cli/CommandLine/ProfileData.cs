using System.CommandLine;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Data;
using Jetpack.Model.Models;
using Jetpack.Model.Recycling;
using Jetpack.Model.Registry;

using Jetpack.Application.Runs;

namespace Jetpack.Cli.CommandLine;

/// <summary>
/// The images a predecessor is profiled on (spec §5.2): an ImageFolder tree or Fashion-MNIST's train
/// split (optionally some classes), how many (a seeded random subset), and how they are loaded.
/// `profile` and `recycle` fill it from their options, the coordinator's recycle child from its
/// job's <c>recycle:</c> fields, the study from its plan.
/// </summary>
public sealed record ProfileSource
{
    public string? Images { get; init; }
    public bool FashionMnist { get; init; }
    public string? Classes { get; init; }
    public int Count { get; init; } = 38_400;
    public int Batch { get; init; } = 64;
    public int Workers { get; init; } = 2;

    /// <summary>Some images are named (profiling can run).</summary>
    public bool Given => Images is not null || FashionMnist;
}

/// <summary>Options and steps shared by `profile`, `recycle` and the study: the images to profile on and the run itself.</summary>
public static class ProfileData
{
    public static readonly Option<string?> Images = new("--profile-images") { Description = "ImageFolder tree (one folder per class, JPEG/PNG) to profile the predecessor on" };
    public static readonly Option<bool> FashionMnist = new("--profile-fashion-mnist") { Description = $"profile on Fashion-MNIST train images ({IdxDataset.FashionMnistDirectory}, apt package dataset-fashion-mnist)" };
    public static readonly Option<string?> Classes = new("--profile-classes") { Description = "only these classes, e.g. 0-4 or 0,2,5 (Fashion-MNIST)" };
    public static readonly Option<int> Count = new("--profile-count") { Description = "images to profile (spec §5.2 used 38,400); a seeded random subset, so roughly class-balanced", DefaultValueFactory = _ => 38_400 };
    public static readonly Option<int> Batch = new("--profile-batch") { Description = "images per profiling batch", DefaultValueFactory = _ => 64 };
    public static readonly Option<int> Workers = new("--profile-workers") { Description = "image decoding threads", DefaultValueFactory = _ => 2 };
    public static readonly Option<bool> CoActivation = new("--coactivation") { Description = "also collect co-activation counts of the MoE blocks' hidden units (needed by --method graph; costs rows·hidden² MACs per batch)" };

    public static IEnumerable<Option> All => [Images, FashionMnist, Classes, Count, Batch, Workers, CoActivation];

    /// <summary>The profiling options of a command line.</summary>
    public static ProfileSource From(ParseResult r) => new()
    {
        Images = r.GetValue(Images), FashionMnist = r.GetValue(FashionMnist), Classes = r.GetValue(Classes),
        Count = r.GetValue(Count), Batch = r.GetValue(Batch), Workers = r.GetValue(Workers),
    };

    /// <summary>The dataset under the predecessor's eval transform (spec §5.2: resize 248, crop 224, mean = std = 0.5).</summary>
    public static IImageDataset Open(ProfileSource source, ModelSpec predecessor)
    {
        var folder = source.Images;
        if (folder is not null && source.FashionMnist) throw new ArgumentException("give either --profile-images or --profile-fashion-mnist, not both");
        int size = predecessor.Vit?.ImageSize ?? predecessor.ConvNeXt!.ImageSize;
        int channels = predecessor.Vit?.InChannels ?? predecessor.ConvNeXt!.InChannels;
        if (folder is not null)
            return new ImageFolderDataset(folder, channels == 1
                ? new EvalTransform(size, 0.9, [0.5f], [0.5f])
                : EvalTransform.Predecessor(size));
        var classes = ClassList.Parse(source.Classes, "--profile-classes", ClassList.ClassCount("fashion-mnist"));
        return IdxDataset.OpenSplit(IdxDataset.FashionMnistDirectory, "train", FashionMnistEval(),
                                    new IdxOptions { Classes = classes });
    }

    /// <summary>Fashion-MNIST's eval transform: the same normalisation the training pipeline uses.</summary>
    public static EvalTransform FashionMnistEval()
    {
        var train = Jetpack.Model.Data.Augment.AugmentOptions.FashionMnist();
        return EvalTransform.ScaleNormalize(train.Mean, train.Std);
    }

    /// <summary>Loads the predecessor into its model (head excluded), profiles it on the chosen images with a progress bar.</summary>
    public static ActivationStats Run(ProfileSource source, ModelSpec predecessor, DenseCheckpoint checkpoint, Device device, long seed,
                                     ISet<string>? coActivationSites, StatKinds kinds, bool attentionInputs)
    {
        using var model = ModelRegistry.Create(predecessor, device);
        using (no_grad())
            foreach (var (key, tensor) in model.state_dict())
                if (checkpoint.Tensors.TryGetValue(key, out var weight) && weight.shape.SequenceEqual(tensor.shape))
                    tensor.copy_(weight);

        var dataset = Open(source, predecessor);
        int count = Math.Min(source.Count, dataset.Count);
        if (count < 1) throw new ArgumentException("--profile-count must be ≥ 1");
        var rng = new Random((int)seed);
        var indices = Enumerable.Range(0, dataset.Count).OrderBy(_ => rng.Next()).Take(count).ToArray();
        ActivationStats? stats = null;
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask($"profiling {predecessor.Variant} on {count:N0} images", maxValue: count);
                var loader = new BatchLoader(dataset, indices, source.Batch, source.Workers);
                stats = ActivationProfiler.Profile(predecessor, model, Batches(loader, device), coActivationSites, done => task.Value = done, kinds, attentionInputs);
            });
        return stats!;
    }

    /// <summary>A loader's images on the device, each batch disposed once the consumer moves on.</summary>
    public static IEnumerable<Tensor> Batches(BatchLoader loader, Device device)
    {
        foreach (var batch in loader)
            using (batch)
            using (var images = batch.Images.to(device))
                yield return images;
    }
}
