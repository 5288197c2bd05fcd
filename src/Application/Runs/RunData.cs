using Jetpack.Model.Data.Augment;

namespace Jetpack.Application.Runs;

/// <summary>The data of a training run (the "data" of a run spec; snake_case in YAML/JSON).</summary>
public sealed record RunData
{
    /// <summary>fashion-mnist (Debian's dataset-fashion-mnist), cifar10 / cifar100 (binary batches under root),
    /// imagefolder (ImageNet layout: root/train/&lt;class&gt;/*.JPEG and root/val/&lt;class&gt;/*), shards
    /// (WebDataset tars root/train-000000.tar …, root/val-*.tar and root/classes.txt, as `jetpack data pack` writes them), or
    /// synthetic (seeded random images of the model's input size: benchmarks).</summary>
    public string Dataset { get; init; } = "fashion-mnist";
    public string? Root { get; init; }
    /// <summary>Classes to keep, e.g. "5-9" (renumbered from 0).</summary>
    public string? Classes { get; init; }
    public int? MaxPerClass { get; init; }
    /// <summary>Evaluation images (test split, same classes) of the periodic evaluations; null = all. The final evaluation always uses the whole split.</summary>
    public int? EvalLimit { get; init; }
    /// <summary>Train-time augmentation (spec §7.2, the dataset's preset); Mixup/CutMix is in the recipe.</summary>
    public bool Augment { get; init; } = true;
    /// <summary>With <see cref="Augment"/>: RandAugment (2 ops, magnitude 9, std 0.5); off for short schedules on small data.</summary>
    public bool RandAugment { get; init; } = true;
    /// <summary>With <see cref="Augment"/>: RandomErasing (p 0.25).</summary>
    public bool RandomErasing { get; init; } = true;
    /// <summary>With <see cref="Augment"/>: the RandomResizedCrop's smallest area fraction; null = the dataset preset's.</summary>
    public double? CropMinScale { get; init; }
    /// <summary>Images of the synthetic dataset.</summary>
    public int SyntheticCount { get; init; } = 256;
    /// <summary>The side of the square images the pipeline produces (RandomResizedCrop for training, resize +
    /// centre crop for evaluation); null = the dataset's own (Fashion-MNIST 28, CIFAR 32) or, for imagefolder,
    /// the model's. CIFAR at 224 for an ImageNet-size model says so here.</summary>
    public int? ImageSize { get; init; }
    /// <summary>Threads decoding and augmenting each batch.</summary>
    public int Workers { get; init; } = 2;
    /// <summary>Batches decoded ahead of the step on a background thread (the bounded prefetch queue).</summary>
    public int Prefetch { get; init; } = 2;
    /// <summary>Shards: the shuffle buffer (in samples) over each rank's stream of its own shards (shard i → rank i mod W).</summary>
    public int ShuffleBuffer { get; init; } = Jetpack.Model.Data.ShardStream.DefaultBufferSize;
    /// <summary>The fraction of undecodable files tolerated (skipped, logged, counted) before the run fails naming them.</summary>
    public double MaxBadFraction { get; init; } = Jetpack.Model.Data.BadFiles.DefaultMaxFraction;

    public static readonly IReadOnlyList<string> Datasets = ["fashion-mnist", "cifar10", "cifar100", "imagefolder", "shards", "synthetic"];

    /// <summary>Datasets of encoded images under root: class folders (train/, val/) or tar shards (train-*.tar, val-*.tar, classes.txt).</summary>
    public bool IsImageFiles => Dataset is "imagefolder" or "shards";

    /// <summary>The (side, channels) of the images this pipeline produces for <paramref name="model"/>.</summary>
    public (int Size, int Channels) OutputShape(Jetpack.Model.Models.ModelSpec model)
    {
        var shape = Jetpack.Model.Registry.ModelRegistry.ImageShape(model);     // [c, h, w]
        return Dataset switch
        {
            "fashion-mnist" => (ImageSize ?? 28, 1),
            "cifar10" or "cifar100" => (ImageSize ?? 32, 3),
            "synthetic" => ((int)shape[1], (int)shape[0]),
            _ => (ImageSize ?? (int)shape[1], 3),
        };
    }

    /// <summary>
    /// The classes this run trains on (a model's <c>num_classes: auto</c>): the selected classes when
    /// <see cref="Classes"/> is given, else the dataset's; null for synthetic data, which takes the model's.
    /// A bad class list counts as the whole dataset here; its own check names data.classes.
    /// </summary>
    public int? TrainedClassCount()
    {
        if (Dataset == "synthetic" || !Datasets.Contains(Dataset)) return null;
        if (Dataset is "imagefolder" or "shards") return EncodedClassCount();
        int all = ClassList.ClassCount(Dataset);
        try { return ClassList.Parse(Classes, "data.classes", all)?.Count ?? all; }
        catch (ArgumentException) { return all; }
    }

    /// <summary>
    /// The classes of a class-folder tree (the folders of root/train, as torchvision counts them) or of tar
    /// shards (the lines of root/classes.txt); null while root is missing (the dataset's opening names it).
    /// </summary>
    public int? EncodedClassCount()
    {
        if (Root is null) return null;
        if (Dataset == "imagefolder")
        {
            string train = Path.Combine(Root, "train");
            return Directory.Exists(train) ? Directory.EnumerateDirectories(train).Count() : null;
        }
        string classes = Path.Combine(Root, "classes.txt");
        return File.Exists(classes) ? File.ReadLines(classes).Count(l => l.Trim().Length > 0) : null;
    }

    /// <summary>The dataset's augmentation preset with this spec's switches applied.</summary>
    public AugmentOptions Apply(AugmentOptions preset) => preset with
    {
        RandAugment = RandAugment ? preset.RandAugment : null,
        Erasing = RandomErasing ? preset.Erasing : null,
        Crop = CropMinScale is { } s && preset.Crop is { } c ? c with { MinScale = s } : preset.Crop,
    };
}
