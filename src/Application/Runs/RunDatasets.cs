using TorchSharp;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Application.Runs;

/// <summary>
/// Opens a run's train and eval splits — the one definition used by `jetpack train` in one process
/// and by every worker (so both see the same images in the same order).
/// </summary>
public static class RunDatasets
{
    /// <param name="model">the model trained (needed for synthetic data: its input size and classes; imagefolder: its input size)</param>
    /// <param name="indexDir">where class-folder index files are kept (beside the run, shared by its ranks and restarts); null: list the tree in memory</param>
    /// <param name="log">hears skipped files and index rebuilds</param>
    public static (IImageDataset Train, IImageDataset Eval) Open(RunData d, ModelSpec? model = null, string? indexDir = null, Action<string>? log = null)
    {
        if (d.IsImageFiles) return OpenImageFiles(d, model, indexDir, log);
        if (d.Dataset == "synthetic")
        {
            if (model is null) throw new ArgumentException("data.dataset: synthetic data needs the model (its input size)");
            var (size, channels, classes) = model.Vit is { } v ? (v.ImageSize, v.InChannels, v.NumClasses)
                                          : (model.ConvNeXt!.ImageSize, model.ConvNeXt.InChannels, model.ConvNeXt.NumClasses);
            using var g = new torch.Generator(1234);
            var images = torch.randn([d.SyntheticCount, channels, size, size], generator: g);     // [n, c, h, w]
            var labels = torch.randint(0, classes, [d.SyntheticCount], generator: g);             // [n]
            var set = new TensorDataset(images, labels, classes);
            return (set, set);
        }
        if (d.Dataset == "fashion-mnist")
        {
            var dir = d.Root ?? IdxDataset.FashionMnistDirectory;
            var classes = ClassList.Parse(d.Classes, "data.classes", ClassList.ClassCount(d.Dataset))?.ToArray();
            var fm = AugmentOptions.FashionMnist();
            var norm = EvalTransform.ScaleNormalize(fm.Mean, fm.Std);          // training and eval share the normalisation
            var train = IdxDataset.OpenSplit(dir, "train", norm, new IdxOptions { Classes = classes, MaxPerClass = d.MaxPerClass });
            var eval = IdxDataset.OpenSplit(dir, "t10k", norm, new IdxOptions { Classes = classes });
            return (d.Augment ? new AugmentedDataset(train, new TrainTransform(d.Apply(fm)), d.Workers) : train, eval);
        }
        if (d.Dataset is not ("cifar10" or "cifar100")) throw new ArgumentException($"data.dataset: must be {string.Join(", ", RunData.Datasets)}, got '{d.Dataset}'");
        if (d.Root is null) throw new ArgumentException("data.root: is required for CIFAR");
        bool c100 = d.Dataset == "cifar100";
        int side = d.ImageSize ?? 32;
        var options = AugmentOptions.ImageNet(32) with { Size = side };
        // At 32 the images are used as they are; at another size (CIFAR for a 224 model) eval resizes the whole image.
        var evalTransform = side == 32 ? EvalTransform.ScaleNormalize(options.Mean, options.Std) : new EvalTransform(side, 1.0, options.Mean, options.Std);
        var cifarTrain = CifarDataset.OpenSplit(d.Root, c100, train: true, evalTransform);
        var cifarEval = CifarDataset.OpenSplit(d.Root, c100, train: false, evalTransform);
        return (d.Augment ? new AugmentedDataset(cifarTrain, new TrainTransform(d.Apply(options)), d.Workers) : cifarTrain, cifarEval);
    }

    /// <summary>The index directory of a run writing into <paramref name="runDir"/> (null: none, the tree is listed in memory).</summary>
    public static string? IndexDir(string? runDir) => runDir is null ? null : Path.Combine(runDir, "data-index");

    /// <summary>The index file of one split of an image-file dataset, kept in <paramref name="indexDir"/>.</summary>
    public static string IndexPath(string indexDir, string split) => Path.Combine(indexDir, $"imagefolder-{split}.index");

    // imagefolder: root/train and root/val, each a class-folder tree with the same classes.
    private static (IImageDataset Train, IImageDataset Eval) OpenImageFiles(RunData d, ModelSpec? model, string? indexDir, Action<string>? log)
    {
        if (d.Root is null) throw new ArgumentException($"data.root: is required for {d.Dataset}");
        int size = d.ImageSize ?? (model is null ? throw new ArgumentException($"data.image_size: is required for {d.Dataset} without a model") : (int)ModelRegistry.ImageShape(model)[1]);
        var options = d.Apply(AugmentOptions.ImageNet(size));
        var evalTransform = new EvalTransform(size, 0.875, options.Mean, options.Std);        // timm's ImageNet eval: 224 → resize 256, centre crop
        if (d.Dataset == "shards")
        {
            var trainShards = new ShardDataset(d.Root, "train", evalTransform, d.MaxBadFraction, log) { ShuffleBuffer = d.ShuffleBuffer, Workers = d.Workers };
            var valShards = new ShardDataset(d.Root, "val", evalTransform, d.MaxBadFraction, log) { Workers = d.Workers };
            return (d.Augment ? new AugmentedDataset(trainShards, new TrainTransform(options), d.Workers) : trainShards, valShards);
        }
        ImageFolderIndex Index(string split)
        {
            var root = Path.Combine(d.Root, split);
            return indexDir is null ? ImageFolderIndex.Build(root) : ImageFolderIndex.OpenOrBuild(root, IndexPath(indexDir, split), log);
        }
        var trainIndex = Index("train");
        var valIndex = Index("val");
        if (!valIndex.Classes.SequenceEqual(trainIndex.Classes))
            throw new InvalidDataException($"data.root: {valIndex.Root} has classes [{string.Join(", ", valIndex.Classes.Take(5))}…] ({valIndex.Classes.Count}), " +
                                           $"{trainIndex.Root} has [{string.Join(", ", trainIndex.Classes.Take(5))}…] ({trainIndex.Classes.Count}): the labels would not line up");
        var train = new ImageFolderDataset(trainIndex, evalTransform, new BadFiles(trainIndex.Images.Count, d.MaxBadFraction, log)) { Workers = d.Workers };
        var eval = new ImageFolderDataset(valIndex, evalTransform, new BadFiles(valIndex.Images.Count, d.MaxBadFraction, log)) { Workers = d.Workers };
        return (d.Augment ? new AugmentedDataset(train, new TrainTransform(options), d.Workers) : train, eval);
    }
}
