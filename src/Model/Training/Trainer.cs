using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using Jetpack.Model.Layers;
using Jetpack.Model.Models;

namespace Jetpack.Model.Training;

public enum Precision { Fp32, Bf16 }

/// <summary>The recipe of one training run (spec §7.2 defaults where they apply).</summary>
public sealed record TrainerOptions
{
    public long Steps { get; init; } = 100;
    public int GlobalBatch { get; init; } = 64;
    /// <summary>Micro-batches per optimizer step (gradient accumulation).</summary>
    public int Accumulation { get; init; } = 1;
    public double LearningRate { get; init; } = 1e-3;
    public double WeightDecay { get; init; } = 0.05;
    /// <summary>Layer-wise lr decay (spec §7.2: 0.6 when fine-tuning; 1 = off, as for training from scratch).</summary>
    public double LayerDecay { get; init; } = 1.0;
    public long WarmupSteps { get; init; } = 10;
    public double MinLrFactor { get; init; } = 0.01;
    /// <summary>Global gradient-norm clip (spec: 5); 0 = off.</summary>
    public double ClipNorm { get; init; } = 5.0;
    public double LabelSmoothing { get; init; } = 0.1;
    /// <summary>Per-batch Mixup/CutMix; null = off.</summary>
    public MixupCutmixOptions? Mixup { get; init; }
    public ulong Seed { get; init; } = 3407;
    public Precision Precision { get; init; } = Precision.Fp32;

    public void Validate()
    {
        if (Steps < 1) throw new ArgumentException($"steps must be ≥ 1 (got {Steps})");
        if (GlobalBatch < 1 || Accumulation < 1 || GlobalBatch % Accumulation != 0)
            throw new ArgumentException($"global batch {GlobalBatch} must be a positive multiple of accumulation {Accumulation}");
        if (LearningRate <= 0) throw new ArgumentException($"learning rate must be > 0 (got {LearningRate})");
        if (LayerDecay is <= 0 or > 1) throw new ArgumentException($"layer decay must be in (0, 1] (got {LayerDecay})");
    }
}

public sealed record StepResult(long Step, double Loss, double LearningRate, double GradNorm, int Images);
public sealed record EvalResult(double Loss, double Top1, double Top5, int Images);

/// <summary>
/// Single-process training (spec §7): deterministic batches from (seed, epoch, step), one model
/// generator for dropout / DropPath / routing noise, Mixup/CutMix drawn from (seed, step), AdamW with
/// the spec's parameter groups, warmup + cosine per iteration, gradient clipping and accumulation,
/// optional bf16. Every random draw is a function of saved state, so a run resumed from a
/// checkpoint continues exactly as the uninterrupted run. No clocks here: callers time steps.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly ModelSpec spec;
    private readonly nn.Module<Tensor, Tensor> model;
    private readonly IImageDataset train;
    private readonly TrainerOptions options;
    private readonly Device device;
    private readonly DistributedSampler sampler;
    private readonly AdamW optimizer;
    private readonly LrSchedule schedule;
    private readonly Generator generator;
    private readonly MixupCutmix? mixup;
    private readonly Bf16Forward? bf16;
    private readonly List<Parameter> parameters;
    private readonly int classes;

    public Trainer(ModelSpec spec, nn.Module<Tensor, Tensor> model, IImageDataset train, TrainerOptions options, Device? device = null)
    {
        options.Validate();
        this.spec = spec; this.model = model; this.train = train; this.options = options;
        this.device = device ?? CPU;
        classes = spec.Vit?.NumClasses ?? spec.ConvNeXt!.NumClasses;
        if (train.NumClasses > classes)
            throw new ArgumentException($"the dataset has {train.NumClasses} classes, the model's head {classes}");
        sampler = new DistributedSampler(train.Count, options.GlobalBatch, seed: options.Seed);
        generator = new Generator(SplitMix64.Mix(options.Seed ^ 0x5eed));
        ModelRandomness.Attach(model, generator);
        parameters = model.parameters().ToList();
        optimizer = new AdamW(ParamGroups.Build(spec, model, new RecipeOptions { LayerDecay = options.LayerDecay, WeightDecay = options.WeightDecay }),
                              options.LearningRate);
        schedule = new LrSchedule(Math.Min(options.WarmupSteps, options.Steps), options.Steps, minFactor: options.MinLrFactor);
        mixup = options.Mixup is { } m ? new MixupCutmix(m) : null;
        if (options.Precision == Precision.Bf16)
        {
            var shadow = Registry.ModelRegistry.Create(spec, this.device);
            ModelRandomness.Attach(shadow, generator);
            bf16 = new Bf16Forward(model, shadow);
        }
    }

    public long Step { get; private set; }
    public nn.Module<Tensor, Tensor> Model => model;
    public TrainerOptions Options => options;
    public int StepsPerEpoch => sampler.StepsPerEpoch;

    /// <summary>One optimizer step over one global batch (split into micro-batches).</summary>
    public StepResult TrainStep()
    {
        long epoch = Step / sampler.StepsPerEpoch;
        var indices = sampler.GlobalBatchAt(epoch, (int)(Step % sampler.StepsPerEpoch));
        int micro = options.GlobalBatch / options.Accumulation;
        double lr = options.LearningRate * schedule.Factor(Step);
        optimizer.LearningRate = lr;
        optimizer.ZeroGrad();
        model.train();
        bf16?.SyncWeights();
        double loss = 0;
        for (int k = 0; k < options.Accumulation; k++)
        {
            using var scope = NewDisposeScope();
            var chunk = indices[(k * micro)..((k + 1) * micro)];
            var (images, labels) = train is ISeededBatches seeded
                ? seeded.Batch(chunk, SplitMix64.Mix(options.Seed ^ ((ulong)Step << 8) ^ (ulong)k))   // augmentation replayable from (seed, step)
                : train.Batch(chunk);
            images = images.to(device); labels = labels.to(device);
            Tensor targets;
            if (mixup is not null)
            {
                using var g = new Generator(SplitMix64.Mix(options.Seed + (ulong)Step * 1_000_003UL + (ulong)k));  // stateless per (step, micro)
                (images, targets, _) = mixup.Apply(images, labels, classes, g);
            }
            else targets = LabelSmoothing.Targets(labels, classes, options.LabelSmoothing);
            double scale = 1.0 / options.Accumulation;
            if (bf16 is not null)
                loss += bf16.ForwardBackward(images, logits => SoftTargetCrossEntropy.Loss(logits, targets) * scale);
            else
            {
                var l = SoftTargetCrossEntropy.Loss(model.forward(images), targets) * scale;
                l.backward();
                loss += l.item<float>();
            }
        }
        double norm = options.ClipNorm > 0 ? GradClip.ClipByGlobalNorm(parameters, options.ClipNorm) : double.NaN;
        optimizer.Step();
        Step++;
        return new StepResult(Step, loss, lr, norm, indices.Length);
    }

    /// <summary>Top-1/top-5 and mean cross-entropy over a dataset, eval mode, no gradients.</summary>
    public EvalResult Evaluate(IImageDataset data, int batch = 256, int? limit = null)
    {
        model.eval();
        int n = Math.Min(limit ?? data.Count, data.Count);
        double lossSum = 0; long top1 = 0, top5 = 0;
        using var _ = no_grad();
        for (int at = 0; at < n; at += batch)
        {
            using var scope = NewDisposeScope();
            var idx = Enumerable.Range(at, Math.Min(batch, n - at)).ToArray();
            var (images, labels) = data.Batch(idx);
            images = images.to(device); labels = labels.to(device);
            var logits = model.forward(images);
            lossSum += nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.Sum).item<float>();
            var best = logits.topk(Math.Min(5, classes), dim: 1).indexes;                        // [b, 5]
            var hit = best.eq(labels.unsqueeze(1));
            top1 += hit.narrow(1, 0, 1).sum().item<long>();
            top5 += hit.sum().item<long>();
        }
        return new EvalResult(lossSum / n, (double)top1 / n, (double)top5 / n, n);
    }

    const string ModelFile = "model.safetensors", OptimizerFile = "optimizer.safetensors", StateFile = "trainer.json";

    /// <summary>
    /// Writes a training checkpoint directory atomically (temp name, then rename): the model with its
    /// identity, the optimizer moments by parameter name, the generator state and the step.
    /// </summary>
    public void Save(string dir)
    {
        var tmp = dir.TrimEnd('/') + $".tmp-{Guid.NewGuid():N}";
        Directory.CreateDirectory(tmp);
        try
        {
            ModelCheckpoint.Save(Path.Combine(tmp, ModelFile), spec, model, new Dictionary<string, string> { ["train.step"] = Step.ToString() });
            var names = new Dictionary<Parameter, string>(ReferenceEqualityComparer.Instance);
            foreach (var (name, p) in model.named_parameters()) names[p] = name;
            var tensors = new List<KeyValuePair<string, Tensor>> { new("rng.model", generator.get_state()) };
            foreach (var (p, (m, v)) in optimizer.State)
            {
                tensors.Add(new($"m.{names[p]}", m));
                tensors.Add(new($"v.{names[p]}", v));
            }
            SafetensorsWriter.Write(Path.Combine(tmp, OptimizerFile), tensors,
                new Dictionary<string, string> { ["adamw.step_count"] = optimizer.StepCount.ToString() });
            File.WriteAllText(Path.Combine(tmp, StateFile), JsonSerializer.Serialize(new { step = Step, variant = spec.Variant, options }, ModelSpec.Json));
            if (Directory.Exists(dir))
            {
                var old = dir.TrimEnd('/') + $".old-{Guid.NewGuid():N}";
                Directory.Move(dir, old);
                Directory.Move(tmp, dir);
                Directory.Delete(old, recursive: true);
            }
            else Directory.Move(tmp, dir);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
            throw;
        }
    }

    /// <summary>Restores model, optimizer, generator and step from <see cref="Save"/>'s directory.</summary>
    public void Restore(string dir)
    {
        ModelCheckpoint.Load(Path.Combine(dir, ModelFile), spec, model);
        using var reader = SafetensorsReader.Open(Path.Combine(dir, OptimizerFile));
        using (var rng = reader.ReadTensor("rng.model")) generator.set_state(rng);
        var byName = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var moments = new List<(Parameter, Tensor, Tensor)>();
        foreach (var name in reader.Names.Where(n => n.StartsWith("m.", StringComparison.Ordinal)).Select(n => n[2..]))
        {
            if (!byName.TryGetValue(name, out var p)) throw new InvalidDataException($"{reader.Path}: moments of unknown parameter '{name}'");
            moments.Add((p, reader.ReadTensor("m." + name), reader.ReadTensor("v." + name)));
        }
        optimizer.Restore(moments, long.Parse(reader.Metadata["adamw.step_count"]));
        foreach (var (_, m, v) in moments) { m.Dispose(); v.Dispose(); }
        using var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, StateFile)));
        Step = state.RootElement.GetProperty("step").GetInt64();
    }

    public void Dispose()
    {
        optimizer.Dispose();
        bf16?.Shadow.Dispose();
        bf16?.Dispose();
        generator.Dispose();
    }
}
