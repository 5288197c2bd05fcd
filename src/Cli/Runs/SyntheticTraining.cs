using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;

namespace Jetpack.Cli.Runs;

/// <summary>
/// A full training step (forward, label-smoothed cross-entropy, backward, AdamW) on random images,
/// for the smoke run and the step benchmark. One dispose scope per step; a GC per step because
/// AdamW.step() leaves native garbage that only finalizers free (ENVIRONMENT.md "Memory").
/// A benchmark kernel, not a training run: it times the forward, backward and optimizer phases of
/// one step, which the <see cref="Jetpack.Model.Training.Trainer"/> does not expose, and has no loop
/// of its own (`jetpack smoke` and `jetpack bench step` call it per step); runs use
/// <see cref="Jetpack.Application.Training.TrainingLoop"/>.
/// </summary>
public sealed class SyntheticTraining : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> model;
    private readonly AdamW optimizer;
    private readonly Tensor images;
    private readonly Tensor labels;

    public SyntheticTraining(ModelSpec spec, int batch, Device device, long seed)
    {
        Spec = spec;
        torch.manual_seed(seed);
        model = ModelRegistry.Create(spec, device);
        model.train();
        optimizer = new AdamW(model.parameters(), lr: 1e-3, weightDecay: 0.05);
        int classes = spec.Vit?.NumClasses ?? spec.ConvNeXt!.NumClasses;
        var gen = new Generator((ulong)seed);
        images = torch.randn([batch, .. ModelRegistry.ImageShape(spec)], generator: gen).to(device);
        labels = torch.randint(0, classes, [batch], generator: gen).to(device);
        ParameterCount = ModelRegistry.ParameterCount(model);
    }

    public ModelSpec Spec { get; }
    public long ParameterCount { get; }

    /// <summary>Runs one step and returns the loss (reading it synchronises the device).</summary>
    public double Step() => TimedStep().Loss;

    /// <summary>One step with the wall time of its phases. Phase times are exact on CPU; on CUDA
    /// they are launch times except where a sync (item) intervenes.</summary>
    public StepTimes TimedStep()
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        double loss, forward, backward, update;
        using (var scope = NewDisposeScope())
        {
            optimizer.ZeroGrad();
            var logits = model.forward(images);                                   // [b, classes]
            var l = nn.functional.cross_entropy(logits, labels, label_smoothing: 0.1);
            forward = sw.Elapsed.TotalSeconds;
            l.backward();
            backward = sw.Elapsed.TotalSeconds - forward;
            optimizer.Step();
            loss = l.item<float>();
            update = sw.Elapsed.TotalSeconds - forward - backward;
        }
        GC.Collect();
        return new StepTimes(loss, forward, backward, update, sw.Elapsed.TotalSeconds - forward - backward - update);
    }

    /// <summary>Writes the model as a checkpoint with its identity (Jetpack.Model.Checkpoints.ModelCheckpoint).</summary>
    public void Save(string path) => Jetpack.Model.Checkpoints.ModelCheckpoint.Save(path, Spec, model);

    public void Dispose()
    {
        optimizer.Dispose();
        model.Dispose();
        images.Dispose();
        labels.Dispose();
    }
}

/// <summary>Loss and seconds spent in each phase of one training step.</summary>
public readonly record struct StepTimes(double Loss, double Forward, double Backward, double Optimizer, double Cleanup)
{
    public double Total => Forward + Backward + Optimizer + Cleanup;
}
