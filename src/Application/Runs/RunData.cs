using Jetpack.Model.Data.Augment;

namespace Jetpack.Application.Runs;

/// <summary>The data of a training run (the "data" of a run spec; snake_case in YAML/JSON).</summary>
public sealed record RunData
{
    /// <summary>fashion-mnist (Debian's dataset-fashion-mnist), cifar10 / cifar100 (binary batches under root), or
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

    public static readonly IReadOnlyList<string> Datasets = ["fashion-mnist", "cifar10", "cifar100", "synthetic"];

    /// <summary>
    /// The classes this run trains on (a model's <c>num_classes: auto</c>): the selected classes when
    /// <see cref="Classes"/> is given, else the dataset's; null for synthetic data, which takes the model's.
    /// A bad class list counts as the whole dataset here; its own check names data.classes.
    /// </summary>
    public int? TrainedClassCount()
    {
        if (Dataset == "synthetic" || !Datasets.Contains(Dataset)) return null;
        int all = ClassList.ClassCount(Dataset);
        try { return ClassList.Parse(Classes, "data.classes", all)?.Count ?? all; }
        catch (ArgumentException) { return all; }
    }

    /// <summary>The dataset's augmentation preset with this spec's switches applied.</summary>
    public AugmentOptions Apply(AugmentOptions preset) => preset with
    {
        RandAugment = RandAugment ? preset.RandAugment : null,
        Erasing = RandomErasing ? preset.Erasing : null,
        Crop = CropMinScale is { } s && preset.Crop is { } c ? c with { MinScale = s } : preset.Crop,
    };
}
