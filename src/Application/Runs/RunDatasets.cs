using TorchSharp;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using Jetpack.Model.Models;

namespace Jetpack.Application.Runs;

/// <summary>
/// Opens a run's train and eval splits — the one definition used by `jetpack train` in one process
/// and by every worker (so both see the same images in the same order).
/// </summary>
public static class RunDatasets
{
    /// <param name="model">the model trained (needed for synthetic data: its input size and classes)</param>
    public static (IImageDataset Train, IImageDataset Eval) Open(RunData d, ModelSpec? model = null)
    {
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
            return (d.Augment ? new AugmentedDataset(train, new TrainTransform(d.Apply(fm))) : train, eval);
        }
        if (d.Dataset is not ("cifar10" or "cifar100")) throw new ArgumentException($"data.dataset: must be {string.Join(", ", RunData.Datasets)}, got '{d.Dataset}'");
        if (d.Root is null) throw new ArgumentException("data.root: is required for CIFAR");
        bool c100 = d.Dataset == "cifar100";
        var options = AugmentOptions.ImageNet(32) with { Size = 32 };
        var evalTransform = EvalTransform.ScaleNormalize(options.Mean, options.Std);
        var cifarTrain = CifarDataset.OpenSplit(d.Root, c100, train: true, evalTransform);
        var cifarEval = CifarDataset.OpenSplit(d.Root, c100, train: false, evalTransform);
        return (d.Augment ? new AugmentedDataset(cifarTrain, new TrainTransform(d.Apply(options))) : cifarTrain, cifarEval);
    }
}
