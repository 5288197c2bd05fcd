using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;

namespace Jetpack.Cli.Runs;

/// <summary>
/// A full training step (forward, label-smoothed cross-entropy, backward, AdamW; fp32 or the bf16 policy) on random images,
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
    private readonly Bf16Forward? bf16;
    private readonly Tensor images;
    private readonly Tensor labels;

    /// <param name="precision">bf16: forward and backward on a bf16 shadow (<see cref="Bf16Forward"/>), fp32 masters</param>
    /// <param name="fused">the fused CPU optimizer pass (with bf16: shadow write and gradient widening inside it); false = the torch-ops path</param>
    public SyntheticTraining(ModelSpec spec, int batch, Device device, long seed, Precision precision = Precision.Fp32, bool fused = true)
    {
        Spec = spec;
        torch.manual_seed(seed);
        model = ModelRegistry.Create(spec, device);
        model.train();
        optimizer = new AdamW(model.parameters(), lr: 1e-3, weightDecay: 0.05, fused: fused);
        if (precision == Precision.Bf16)
        {
            bf16 = new Bf16Forward(model, ModelRegistry.Create(spec, device));
            ShadowsFused = optimizer.AttachShadows(bf16.Pairs);
        }
        int classes = spec.Vit?.NumClasses ?? spec.ConvNeXt!.NumClasses;
        var gen = new Generator((ulong)seed);
        images = torch.randn([batch, .. ModelRegistry.ImageShape(spec)], generator: gen).to(device);
        labels = torch.randint(0, classes, [batch], generator: gen).to(device);
        ParameterCount = ModelRegistry.ParameterCount(model);
    }

    public ModelSpec Spec { get; }
    public long ParameterCount { get; }
    public bool OptimizerFused => optimizer.IsFused;
    /// <summary>bf16 with the shadow copy and gradient widening inside the optimizer pass.</summary>
    public bool ShadowsFused { get; }

    /// <summary>Runs one step and returns the loss (reading it synchronises the device).</summary>
    public double Step() => TimedStep().Loss;

    /// <summary>One step with the wall time of its phases. Phase times are exact on CPU; on CUDA
    /// they are launch times except where a sync (item) intervenes.</summary>
    public StepTimes TimedStep()
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        double loss, zero, sync = 0, forward, backward, update;
        using (var scope = NewDisposeScope())
        {
            optimizer.ZeroGrad();
            zero = sw.Elapsed.TotalSeconds;
            if (bf16 is null)
            {
                var logits = model.forward(images);                               // [b, classes]
                var l = nn.functional.cross_entropy(logits, labels, label_smoothing: 0.1);
                forward = sw.Elapsed.TotalSeconds - zero;
                l.backward();
                loss = l.item<float>();
                backward = sw.Elapsed.TotalSeconds - zero - forward;
            }
            else
            {
                if (!ShadowsFused) bf16.SyncWeights();                           // else the last optimizer pass wrote the shadows
                sync = sw.Elapsed.TotalSeconds - zero;
                double forwardEnd = 0;
                loss = bf16.ForwardBackward(images, logits =>
                {
                    var l = nn.functional.cross_entropy(logits, labels, label_smoothing: 0.1);
                    forwardEnd = sw.Elapsed.TotalSeconds;
                    return l;
                }, keepShadowGradients: ShadowsFused);
                forward = forwardEnd - zero - sync;
                backward = sw.Elapsed.TotalSeconds - forwardEnd;                  // includes the widening pass when not fused
            }
            double before = sw.Elapsed.TotalSeconds;
            optimizer.Step();
            update = sw.Elapsed.TotalSeconds - before;
        }
        GC.Collect();
        double total = sw.Elapsed.TotalSeconds;
        return new StepTimes(loss, forward, backward, update, total - zero - sync - forward - backward - update, zero, sync);
    }

    /// <summary>
    /// The parameter path alone (bench step --optimizer-only): gradients are fixed random tensors made
    /// once (fp32 on the masters, or bf16 on the shadows), handed to the step untimed; timed are the
    /// zeroing, the separate bf16 widening and shadow copy where not fused, and the optimizer.
    /// </summary>
    public StepTimes TimedOptimizerStep()
    {
        using var outer = NewDisposeScope();
        if (fixedGrads is null)
        {
            var gen = new Generator(7);
            fixedGrads = [.. (bf16 is null ? model.parameters() : bf16.ShadowParameters)
                .Select(p => (p, torch.randn(p.shape, generator: gen).mul_(1e-3).to(p.dtype).DetachFromDisposeScope()))];
        }
        foreach (var (p, g) in fixedGrads) if (p.grad is null) p.grad = g;       // untimed: the backward's output
        var sw = System.Diagnostics.Stopwatch.StartNew();
        double zero, widen = 0, sync = 0, update;
        optimizer.ZeroGrad();
        zero = sw.Elapsed.TotalSeconds;
        if (bf16 is not null && !ShadowsFused)
        {
            bf16.WidenGradients();                                                 // the backward's tail in the separate-pass policy
            widen = sw.Elapsed.TotalSeconds - zero;
        }
        optimizer.Step();
        update = sw.Elapsed.TotalSeconds - zero - widen;
        if (bf16 is not null && !ShadowsFused)
        {
            double before = sw.Elapsed.TotalSeconds;
            bf16.SyncWeights();
            sync = sw.Elapsed.TotalSeconds - before;
        }
        if (bf16 is not null) foreach (var (p, g) in fixedGrads) p.grad = g;     // the widening cleared them
        return new StepTimes(0, 0, widen, update, 0, zero, sync);
    }

    private (TorchSharp.Modules.Parameter P, Tensor G)[]? fixedGrads;

    /// <summary>Writes the model as a checkpoint with its identity (Jetpack.Model.Checkpoints.ModelCheckpoint).</summary>
    public void Save(string path) => Jetpack.Model.Checkpoints.ModelCheckpoint.Save(path, Spec, model);

    public void Dispose()
    {
        optimizer.Dispose();
        bf16?.Dispose();
        foreach (var (_, g) in fixedGrads ?? []) g.Dispose();
        model.Dispose();
        images.Dispose();
        labels.Dispose();
    }
}

/// <summary>Loss and seconds spent in each phase of one training step (Cleanup: the GC after it; ShadowSync: the separate bf16 copy).</summary>
public readonly record struct StepTimes(double Loss, double Forward, double Backward, double Optimizer, double Cleanup, double ZeroGrad = 0, double ShadowSync = 0)
{
    public double Total => Forward + Backward + Optimizer + Cleanup + ZeroGrad + ShadowSync;
}
