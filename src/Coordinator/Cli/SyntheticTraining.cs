using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;

namespace Jetpack.Coordinator.Cli;

/// <summary>
/// A full training step (forward, label-smoothed cross-entropy, backward, AdamW) on random images,
/// for the smoke run and the step benchmark. One dispose scope per step; a GC per step because
/// AdamW.step() leaves native garbage that only finalizers free (ENVIRONMENT.md "Memory").
/// </summary>
public sealed class SyntheticTraining : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> model;
    private readonly optim.Optimizer optimizer;
    private readonly Tensor images;
    private readonly Tensor labels;

    public SyntheticTraining(ModelSpec spec, int batch, Device device, long seed)
    {
        Spec = spec;
        torch.manual_seed(seed);
        model = ModelRegistry.Create(spec, device);
        model.train();
        optimizer = optim.AdamW(model.parameters(), lr: 1e-3, weight_decay: 0.05);
        int classes = spec.Vit?.NumClasses ?? spec.ConvNeXt!.NumClasses;
        var gen = new Generator((ulong)seed);
        images = torch.randn([batch, .. ModelRegistry.ImageShape(spec)], generator: gen).to(device);
        labels = torch.randint(0, classes, [batch], generator: gen).to(device);
        ParameterCount = ModelRegistry.ParameterCount(model);
    }

    public ModelSpec Spec { get; }
    public long ParameterCount { get; }

    /// <summary>Runs one step and returns the loss (reading it synchronises the device).</summary>
    public double Step()
    {
        double loss;
        using (var scope = NewDisposeScope())
        {
            optimizer.zero_grad();
            var logits = model.forward(images);                                   // [b, classes]
            var l = nn.functional.cross_entropy(logits, labels, label_smoothing: 0.1);
            l.backward();
            optimizer.step();
            loss = l.item<float>();
        }
        GC.Collect();
        return loss;
    }

    public void Dispose()
    {
        optimizer.Dispose();
        model.Dispose();
        images.Dispose();
        labels.Dispose();
    }
}
