using System.Text.Json;
using System.Text.Json.Serialization;
using Jetpack.Model.Training;

namespace Jetpack.Coordinator.Cli;

/// <summary>The data of a training run.</summary>
public sealed record TrainData
{
    /// <summary>fashion-mnist (Debian's dataset-fashion-mnist) or cifar10 / cifar100 (binary batches under root).</summary>
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

}

/// <summary>A `jetpack train` config (YAML or JSON). Unknown fields are errors; every error names the file and the field.</summary>
public sealed record TrainConfig
{
    public string Model { get; init; } = "v_jetmoe_fmnist";
    /// <summary>A model checkpoint (e.g. from `jetpack recycle`) to start from; null = from scratch.</summary>
    public string? Init { get; init; }
    public TrainData Data { get; init; } = new();
    /// <summary>The recipe (Jetpack.Model.Training.TrainerOptions, snake_case); "mixup": {} turns Mixup/CutMix on with its defaults.</summary>
    public TrainerOptions Recipe { get; init; } = new();
    public int EvalEvery { get; init; } = 100;
    public int CheckpointEvery { get; init; } = 200;
    public string Out { get; init; } = "results/train";

    /// <summary>Reads a YAML (.yaml/.yml) or JSON config: the job-spec dialect (snake_case, unknown fields are errors naming the field), then validates it.</summary>
    public static TrainConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config not found: {path}", path);
        var config = Jobs.JobSpecReader.ParseAs<TrainConfig>(File.ReadAllText(path), Jobs.JobSpecReader.FormatOf(path), path,
                                                              "model, init, data, recipe, eval_every, checkpoint_every, out");
        config.Validate(path);
        return config;
    }

    public void Validate(string path)
    {
        void Check(bool ok, string field, string problem) { if (!ok) throw new InvalidDataException($"{path}: {field}: {problem}"); }
        Check(Recipe.Steps >= 1, "recipe.steps", $"must be ≥ 1, got {Recipe.Steps}");
        Check(Recipe.GlobalBatch >= 1, "recipe.global_batch", $"must be ≥ 1, got {Recipe.GlobalBatch}");
        Check(Recipe.Accumulation >= 1 && Recipe.GlobalBatch % Recipe.Accumulation == 0, "recipe.accumulation", $"must divide global_batch {Recipe.GlobalBatch}, got {Recipe.Accumulation}");
        Check(Recipe.LearningRate > 0, "recipe.learning_rate", $"must be > 0, got {Recipe.LearningRate}");
        Check(Recipe.LayerDecay is > 0 and <= 1, "recipe.layer_decay", $"must be in (0, 1], got {Recipe.LayerDecay}");
        Check(Recipe.LabelSmoothing is >= 0 and < 1, "recipe.label_smoothing", $"must be in [0, 1), got {Recipe.LabelSmoothing}");
        Check(EvalEvery >= 1, "eval_every", $"must be ≥ 1, got {EvalEvery}");
        Check(CheckpointEvery >= 1, "checkpoint_every", $"must be ≥ 1, got {CheckpointEvery}");
        Check(Data.Dataset is "fashion-mnist" or "cifar10" or "cifar100", "data.dataset", $"must be fashion-mnist, cifar10 or cifar100, got '{Data.Dataset}'");
        Check(Data.Dataset == "fashion-mnist" || Data.Root is not null, "data.root", "is required for CIFAR");
        Check(Init is null || File.Exists(Init), "init", $"checkpoint not found: {Init}");
        Check(Data.CropMinScale is null or (> 0 and <= 1), "data.crop_min_scale", $"must be in (0, 1], got {Data.CropMinScale}");
    }
}
