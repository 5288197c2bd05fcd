using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Augment;
using Jetpack.Model.Distributed;
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
    /// <summary>Layer-wise lr decay, the one home of this setting (ParamGroups reads it here): 1 = off, the
    /// default, as for training from scratch; fine-tuning recipes set 0.6 (spec §7.2), as the study does.</summary>
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
    /// <summary>The fused CPU optimizer pass (issue 21; ignored off CPU); false = the torch-ops path, for comparisons.</summary>
    public bool FusedOptimizer { get; init; } = true;
    /// <summary>A full garbage collection every this many steps (0 = leave it to the runtime): keeps RSS flat over long runs.</summary>
    public int CollectGarbageEvery { get; init; } = 20;

    public void Validate()
    {
        if (Steps < 1) throw new ArgumentException($"steps must be ≥ 1 (got {Steps})");
        if (GlobalBatch < 1 || Accumulation < 1 || GlobalBatch % Accumulation != 0)
            throw new ArgumentException($"global batch {GlobalBatch} must be a positive multiple of accumulation {Accumulation}");
        if (LearningRate <= 0) throw new ArgumentException($"learning rate must be > 0 (got {LearningRate})");
        if (LayerDecay is <= 0 or > 1) throw new ArgumentException($"layer decay must be in (0, 1] (got {LayerDecay})");
    }
}

/// <param name="DataWaitSeconds">how long the step waited for its batches (0 when the prefetch queue had them ready)</param>
/// <param name="ImagesRead">images this rank has read for training so far (its part of each global batch, and Mixup's partners)</param>
/// <param name="BadFiles">undecodable training files met so far (substituted; see <see cref="Data.BadFiles"/>)</param>
public sealed record StepResult(long Step, double Loss, double LearningRate, double GradNorm, int Images,
                                double DataWaitSeconds = 0, long ImagesRead = 0, int BadFiles = 0);
/// <summary>
/// An evaluation of the model after step <see cref="Step"/> on <paramref name="Images"/> images: mean
/// loss and top-1/top-5 accuracy. The one evaluation record: the trainer, the training loop and its
/// observers, metrics.jsonl, the final model's metadata and the coordinator's job state all carry it.
/// </summary>
public sealed record EvalResult(double Loss, double Top1, double Top5, int Images)
{
    /// <summary>The step whose weights were evaluated (0 before training).</summary>
    public long Step { get; init; }
}

/// <summary>
/// Single-process training (spec §7): deterministic batches from (seed, epoch, step), one model
/// generator for dropout / DropPath / routing noise, Mixup/CutMix drawn from (seed, step), AdamW with
/// the spec's parameter groups, warmup + cosine per iteration, gradient clipping and accumulation,
/// optional bf16. Every random draw is a function of saved state, so a run resumed from a
/// checkpoint continues exactly as the uninterrupted run. No clocks here: callers time steps.
///
/// Distributed mode (expert parallelism, DESIGN.md "One training step"; pass a
/// <see cref="DistributedContext"/> and a model built with its shard): each rank takes its
/// <c>RankSlice</c> of every global micro-batch; its loss is scaled by b_local / B_micro, so the sum
/// over ranks is the global mean; after backward the replicated gradients are summed over ranks in
/// buckets, expert gradients stay with their owner (with world = G × R replicas, each expert slice is summed over the R ranks holding it); clipping uses the global norm (replicated part,
/// identical everywhere, + the all-reduced sum of the expert parts); the reported loss is the
/// all-reduced sum. Augmentation depends on (seed, step, micro, sample index) only, so an image is
/// augmented the same on any rank. Mixup/CutMix pairs sample p of the global micro-batch with
/// sample B−1−p, which may live on another rank: each rank also loads its slice's mirror, so the
/// mix equals the single process's (at twice the augmentation work). The model generator (dropout, DropPath, routing noise)
/// is re-seeded every step from (seed, step, rank): per-rank streams, so equivalence with the single
/// process holds only with them off. An exchange failure throws <see cref="ExchangeFailedException"/>
/// from <see cref="TrainStep"/>; the step's gradients are then invalid: restore a checkpoint.
/// With tar shards (<see cref="ShardDataset"/>) a rank reads only its own shards: its slice of each
/// micro-batch (the same length) comes from its <see cref="ShardStream"/> instead of the global order,
/// still a pure function of (seed, step, k, rank), so resumes are exact; runs with another world size
/// see other batches, and Mixup pairs within the slice.
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
    private readonly DistributedContext? distributed;
    private readonly List<Parameter> expertParameters = [];
    private readonly List<Parameter> replicatedParameters = [];
    private readonly GradientBuckets? buckets;
    private readonly DistributedSampler loadSampler;          // the prefetch thread's own (GlobalBatchAt caches per instance)
    private readonly BatchPrefetcher<LoadedBatch> prefetcher;
    private readonly ShardStream? shardStream;                // tar shards: this rank's own stream instead of its slice of the global order
    private readonly int prefetch;
    private long imagesRead;
    private readonly GradientBuckets? expertBuckets;                 // expert gradients summed over replicas (R > 1)
    private readonly bool shadowsFused;
    private readonly bool gradientsOnShadow;

    /// <param name="distributed">expert-parallel mode: this rank's context; <paramref name="model"/> must be built with its shard</param>
    /// <param name="prefetch">micro-batches loaded ahead on a background thread (data.prefetch, ≥ 1); evaluation batches likewise</param>
    public Trainer(ModelSpec spec, nn.Module<Tensor, Tensor> model, IImageDataset train, TrainerOptions options, Device? device = null,
                   DistributedContext? distributed = null, int prefetch = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(prefetch, 1);
        this.prefetch = prefetch;
        options.Validate();
        this.spec = spec; this.model = model; this.train = train; this.options = options;
        this.device = device ?? CPU;
        this.distributed = distributed;
        classes = spec.Vit?.NumClasses ?? spec.ConvNeXt!.NumClasses;
        if (train.NumClasses > classes)
            throw new ArgumentException($"the dataset has {train.NumClasses} classes, the model's head {classes}");
        sampler = new DistributedSampler(train.Count, options.GlobalBatch, seed: options.Seed);
        loadSampler = new DistributedSampler(train.Count, options.GlobalBatch, seed: options.Seed);
        prefetcher = new BatchPrefetcher<LoadedBatch>(LoadMicroBatch, prefetch, limit: options.Steps * options.Accumulation);   // nothing past the run's last step
        generator = new Generator(GeneratorSeed(0));
        ModelRandomness.Attach(model, generator);
        parameters = model.parameters().ToList();
        if (distributed is not null)
        {
            int micro = options.GlobalBatch / options.Accumulation;
            if (micro < distributed.WorldSize)
                throw new ArgumentException($"micro-batch {micro} (global batch {options.GlobalBatch} / accumulation {options.Accumulation}) is smaller than the world size {distributed.WorldSize}: some ranks would get no samples");
            foreach (var (name, module) in model.named_modules())
                if (module is Moe.IShardedMoe moe && !ReferenceEquals(moe.Shard, distributed.Shard))
                    throw new ArgumentException($"MoE layer '{name}' is not built with this context's shard: build the model with ModelRegistry.Create(spec, device, context.Shard)");
            foreach (var (name, p) in model.named_parameters())
                (ExpertKeys.IsExpert(spec, name) ? expertParameters : replicatedParameters).Add(p);
            buckets = new GradientBuckets(replicatedParameters, distributed.BucketElements);
            if (distributed.ExpertReducer is not null) expertBuckets = new GradientBuckets(expertParameters, distributed.BucketElements);
        }
        if (ShardDataset.Of(train) is { } shards)
        {
            int world = distributed?.WorldSize ?? 1, rank = distributed?.Rank ?? 0;
            int length = DistributedSampler.RankSlice(options.GlobalBatch / options.Accumulation, world, rank).Length;
            shardStream = shards.StreamFor(world, rank, options.Accumulation * length, options.Seed);
        }
        optimizer = new AdamW(ParamGroups.Build(spec, model, options),
                              options.LearningRate, fused: options.FusedOptimizer);
        schedule = new LrSchedule(Math.Min(options.WarmupSteps, options.Steps), options.Steps, minFactor: options.MinLrFactor);
        mixup = options.Mixup is { } m ? new MixupCutmix(m) : null;
        if (options.Precision == Precision.Bf16)
        {
            var shadow = Registry.ModelRegistry.Create(spec, this.device, distributed?.Shard);
            ModelRandomness.Attach(shadow, generator);
            bf16 = new Bf16Forward(model, shadow);
            // Fused on CPU (issue 21): the optimizer writes the shadow; with one micro-batch per step and
            // no all-reduce (which sums the fp32 masters' gradients) the bf16 gradients stay on the shadow
            // and are widened once, in the optimizer's pass.
            shadowsFused = optimizer.AttachShadows(bf16.Pairs);
            gradientsOnShadow = shadowsFused && options.Accumulation == 1 && distributed is null;
        }
    }

    public long Step { get; private set; }
    public nn.Module<Tensor, Tensor> Model => model;
    public TrainerOptions Options => options;
    public int StepsPerEpoch => sampler.StepsPerEpoch;
    public DistributedContext? Distributed => distributed;
    /// <summary>Tar shards: this rank's stream over its own shards; null for other datasets.</summary>
    public ShardStream? Shards => shardStream;

    /// <summary>The model generator's seed at a step: a function of (seed, step, rank), so nothing needs saving (rank 0 of any world = the single process).</summary>
    private ulong GeneratorSeed(long step) =>
        SplitMix64.Mix(SplitMix64.Mix(options.Seed ^ 0x5eed) + (ulong)step * 0x9E3779B97F4A7C15UL + (ulong)(distributed?.Rank ?? 0) * 0xD1B54A32D192ED03UL);

    /// <summary>One optimizer step over one global batch (split into micro-batches; in distributed mode, this rank's part of each).</summary>
    public StepResult TrainStep()
    {
        // One dispose scope per step (ENVIRONMENT.md): besides the micro-batch scopes below it owns every
        // tensor handle the step makes outside them — `p.grad` wrappers in clipping and AdamW, the
        // all-reduce's statistics — which would otherwise wait for finalizers (RSS grew ~0.25 MB/step).
        // Everything that outlives a step (AdamW moments, fp32 master grads) is detached where it is made.
        using var scope = NewDisposeScope();
        try { return TrainStepCore(); }
        finally { distributed?.Shard.ReleasePending(); }
    }

    private StepResult TrainStepCore()
    {
        int micro = options.GlobalBatch / options.Accumulation;
        int world = distributed?.WorldSize ?? 1, rank = distributed?.Rank ?? 0;
        var rankBatches = GroupBatches(micro);
        double lr = options.LearningRate * schedule.Factor(Step);
        optimizer.LearningRate = lr;
        optimizer.ZeroGrad();
        model.train();
        if (shadowsFused) bf16!.SyncBuffers();     // the previous optimizer step wrote the parameters' shadows
        else bf16?.SyncWeights();
        generator.manual_seed(unchecked((long)GeneratorSeed(Step)));
        double loss = 0, waitSeconds = 0;
        for (int k = 0; k < options.Accumulation; k++)
        {
            using var scope = NewDisposeScope();
            var (_, length) = DistributedSampler.RankSlice(micro, world, rank);
            distributed?.Shard.BeginMicroBatch(Step, k, rankBatches);
            // this rank's samples of micro-batch k (global[offset..offset + length]), made ahead on the prefetch thread
            var (loaded, waited) = prefetcher.Take(Step * options.Accumulation + k);
            using var owned = loaded;
            waitSeconds += waited;
            imagesRead += loaded.Read;
            var (images, labels) = (loaded.Images.to(device), loaded.Labels.to(device));
            Tensor targets;
            if (mixup is not null)
            {
                using var g = new Generator(SplitMix64.Mix(options.Seed + (ulong)Step * 1_000_003UL + (ulong)k));  // stateless per (step, micro)
                // one process, or tar shards (each rank its own stream, no global batch to mirror): pairs within the slice
                if (loaded.PartnerImages is null) (images, targets, _) = mixup.Apply(images, labels, classes, g);
                else
                {
                    // Global Mixup pairs position p with micro−1−p: the slice's mirror came with the batch (see LoadMicroBatch)
                    (images, targets, _) = mixup.ApplyPaired(images, labels, loaded.PartnerImages!.to(device).flip(0), loaded.PartnerLabels!.to(device).flip(0), classes, g);
                }
            }
            else targets = LabelSmoothing.Targets(labels, classes, options.LabelSmoothing);
            double scale = (double)length / micro / options.Accumulation;   // Σ over ranks and micro-batches = the global mean
            if (bf16 is not null)
                loss += bf16.ForwardBackward(images, logits => SoftTargetCrossEntropy.Loss(logits, targets) * scale, gradientsOnShadow);
            else
            {
                var l = SoftTargetCrossEntropy.Loss(model.forward(images), targets) * scale;
                l.backward();
                loss += l.item<float>();
            }
            distributed?.Shard.ThrowIfBackwardFailed();
        }
        double norm, clip = 1;
        if (distributed is null)
        {
            // The clipping factor is applied inside the optimizer's pass (no separate pass over the gradients).
            norm = options.ClipNorm > 0 ? Math.Sqrt(GradClip.SumOfSquares(gradientsOnShadow ? bf16!.ShadowParameters : parameters)) : double.NaN;
            if (options.ClipNorm > 0) clip = GradClip.Coefficient(options.ClipNorm, norm);
        }
        else
        {
            // With replicas (R > 1) each expert slice's gradient is first summed over the R ranks holding
            // it, so every holder has the full gradient. Then one all-reduce over the world: the
            // replicated gradients' buckets plus [loss, Σ expert g²] — the squares from replica 0
            // only, so every expert counts once.
            expertBuckets?.AllReduce(distributed.ExpertReducer!, Step);
            double ownSquares = distributed.WritesExperts ? GradClip.SumOfSquares(expertParameters) : 0;
            using var stats = torch.tensor(new[] { (float)loss, (float)ownSquares });
            buckets!.AllReduce(distributed.Reducer, Step, stats);
            loss = stats[0].item<float>();
            double expertSquares = stats[1].item<float>();
            double replicatedSquares = GradClip.SumOfSquares(replicatedParameters);           // identical on every rank after the sum
            norm = Math.Sqrt(replicatedSquares + expertSquares);
            if (options.ClipNorm > 0) GradClip.ScaleTo(parameters, options.ClipNorm, norm);
            else norm = double.NaN;
        }
        optimizer.Step(clip);
        Step++;
        // A blocking collection every few steps keeps resident memory flat: what a step leaves is managed
        // garbage (pixel arrays, index arrays, tensor wrappers), which the GC otherwise lets grow to its
        // generation budget (~100 MB here) before collecting. Costs a few ms per collection.
        if (options.CollectGarbageEvery > 0 && Step % options.CollectGarbageEvery == 0) GC.Collect();
        return new StepResult(Step, loss, lr, norm, options.GlobalBatch, waitSeconds, imagesRead, (train as IEncodedSource)?.BadFiles.Count ?? 0);
    }

    /// <summary>A micro-batch as the prefetch thread loads it: this rank's images and labels, Mixup's mirrored partners when distributed.</summary>
    private sealed record LoadedBatch(Tensor Images, Tensor Labels, Tensor? PartnerImages, Tensor? PartnerLabels, int Read) : IDisposable
    {
        public void Dispose()
        {
            Images.Dispose(); Labels.Dispose(); PartnerImages?.Dispose(); PartnerLabels?.Dispose();
        }
    }

    /// <summary>
    /// Micro-batch <paramref name="ticket"/> = step × accumulation + k of this rank: a pure function of
    /// (seed, step, k, rank), so loading it ahead, or again after a restore, gives the same tensors.
    /// Runs on the prefetch thread; resuming at step s loads from s on and decodes nothing before it.
    /// </summary>
    private LoadedBatch LoadMicroBatch(long ticket)
    {
        long step = ticket / options.Accumulation;
        int k = (int)(ticket % options.Accumulation);
        int micro = options.GlobalBatch / options.Accumulation;
        int world = distributed?.WorldSize ?? 1, rank = distributed?.Rank ?? 0;
        var (offset, length) = DistributedSampler.RankSlice(micro, world, rank);
        ulong batchSeed = SplitMix64.Mix(options.Seed ^ ((ulong)step << 8) ^ (ulong)k);     // augmentation replayable from (seed, step)
        (Tensor, Tensor) Load(int[] which) => train is ISeededBatches seeded ? seeded.Batch(which, batchSeed) : train.Batch(which);
        if (shardStream is not null)
        {
            // tar shards: the same slice length, taken from this rank's own stream (its shards, its shuffle buffer)
            var (own, ownLabels) = Load(shardStream.MicroBatch(step, k, length));
            return new LoadedBatch(own, ownLabels, null, null, length);
        }
        var indices = loadSampler.GlobalBatchAt(step / loadSampler.StepsPerEpoch, (int)(step % loadSampler.StepsPerEpoch));
        var global = indices[(k * micro)..((k + 1) * micro)];
        var (images, labels) = Load(global[offset..(offset + length)]);
        if (mixup is null || world == 1) return new LoadedBatch(images, labels, null, null, length);
        // Global Mixup pairs position p with micro−1−p: load this slice's mirror (the same seeded
        // augmentation its owner applies), so every rank mixes as one process would. Cost: the
        // rank augments twice as many images.
        var (partners, partnerLabels) = Load(global[(micro - offset - length)..(micro - offset)]);
        return new LoadedBatch(images, labels, partners, partnerLabels, 2 * length);
    }

    /// <summary>Samples each rank of this rank's expert group holds of a global micro-batch (the world is sliced by world rank).</summary>
    private int[] GroupBatches(int micro)
    {
        if (distributed is null) return [micro];
        int world = distributed.WorldSize;
        return distributed.Layout.Group(distributed.Rank).Select(v => DistributedSampler.RankSlice(micro, world, v).Length).ToArray();
    }

    /// <summary>
    /// Top-1/top-5 and mean cross-entropy over a dataset, eval mode, no gradients. Distributed: every
    /// rank must call it; each evaluates its <c>RankSlice</c> of every batch (a rank may get none of a
    /// small last batch), and the sums are all-reduced, so every rank returns the global result.
    /// Exchange tags of evaluation use negative micro-batch numbers (−1 − batch index) at the current step.
    /// </summary>
    public EvalResult Evaluate(IImageDataset data, int batch = 256, int? limit = null)
    {
        model.eval();
        int n = Math.Min(limit ?? data.Count, data.Count);
        if (n < 1) throw new ArgumentException($"evaluation needs at least one image: the split holds {data.Count}, the limit is {limit?.ToString() ?? "none"} (data.eval_limit)");
        int world = distributed?.WorldSize ?? 1, rank = distributed?.Rank ?? 0;
        double lossSum = 0; long top1 = 0, top5 = 0;
        // Batch i is this rank's slice of images [i·batch, …): loaded ahead on the prefetch thread.
        ImageBatch LoadEvalBatch(long i)
        {
            int at = (int)i * batch, size = Math.Min(batch, n - at);
            var (offset, length) = DistributedSampler.RankSlice(size, world, rank);
            var (images, labels) = length > 0 ? data.Batch(Enumerable.Range(at + offset, length).ToArray())
                : (torch.empty([0, .. Registry.ModelRegistry.ImageShape(spec)]), torch.empty(0, ScalarType.Int64));   // an empty slice still joins the exchanges
            return new ImageBatch(images, labels);
        }
        using var evalPrefetcher = new BatchPrefetcher<ImageBatch>(LoadEvalBatch, prefetch, limit: (n + batch - 1) / batch);
        try
        {
            using var _ = no_grad();
            for (int at = 0, i = 0; at < n; at += batch, i++)
            {
                using var scope = NewDisposeScope();
                int size = Math.Min(batch, n - at);
                var (_, length) = DistributedSampler.RankSlice(size, world, rank);
                distributed?.Shard.BeginMicroBatch(Step, -1 - i, GroupBatches(size));
                using var loaded = evalPrefetcher.Take(i).Item;
                var (images, labels) = (loaded.Images.to(device), loaded.Labels.to(device));
                var logits = model.forward(images);
                if (length == 0) continue;
                lossSum += nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.Sum).item<float>();
                var best = logits.topk(Math.Min(5, classes), dim: 1).indexes;                        // [b, 5]
                var hit = best.eq(labels.unsqueeze(1));
                top1 += hit.narrow(1, 0, 1).sum().item<long>();
                top5 += hit.sum().item<long>();
            }
        }
        finally { distributed?.Shard.ReleasePending(); }
        if (distributed is not null)
        {
            // fp32 like every tensor this trainer all-reduces; counts stay exact below 2^24 images
            using var sums = torch.tensor(new[] { (float)lossSum, top1, top5 });
            distributed.Reducer.AllReduceSum(Step, [sums]);
            (lossSum, top1, top5) = (sums[0].item<float>(), (long)sums[1].item<float>(), (long)sums[2].item<float>());
        }
        return new EvalResult(lossSum / n, (double)top1 / n, (double)top5 / n, n) { Step = Step };
    }

    /// <summary>
    /// Writes a topology-free training checkpoint directory (see <see cref="TrainingCheckpoint"/>):
    /// atomically (temp name, then rename). In distributed mode every rank calls it after the same
    /// step; each writes its expert file, rank 0 the replicated part and the manifest.
    /// </summary>
    public void Save(string dir) =>
        TrainingCheckpoint.Save(dir, new TrainingState(spec, model, optimizer, Step, Position()), distributed);

    /// <summary>
    /// Restores model, optimizer and step from a checkpoint saved with any world size (expert ranges
    /// re-sliced). The data stream must be the same (seed, global batch): a mismatch names the field.
    /// </summary>
    public void Restore(string dir)
    {
        var m = TrainingCheckpoint.ReadManifest(dir);
        CheckSameData(m.Data, Path.Combine(dir, TrainingCheckpoint.ManifestFile));
        m = TrainingCheckpoint.Restore(dir, spec, model, optimizer, distributed?.Shard);
        Step = m.Step;
        bf16?.SyncWeights();
    }

    /// <summary>
    /// Restores from this rank's part of a checkpoint that was scattered to it
    /// (<see cref="TrainingCheckpoint.ReadRank"/> on the sender): the tensors, and the manifest's
    /// step, optimizer step count and data position (checked as <see cref="Restore"/> checks them).
    /// </summary>
    public void RestoreScattered(IReadOnlyDictionary<string, Tensor> state, long step, long optimizerSteps, DataPosition data, string source)
    {
        CheckSameData(data, source);
        TrainingCheckpoint.RestoreTensors(state, source, model, optimizer, optimizerSteps);
        Step = step;
        bf16?.SyncWeights();
    }

    private void CheckSameData(DataPosition saved, string where)
    {
        var here = Position();
        if (saved.Seed != here.Seed) throw new ArgumentException($"{where}: data.seed {saved.Seed}, this run's seed {here.Seed}");
        if (saved.GlobalBatch != here.GlobalBatch) throw new ArgumentException($"{where}: data.global_batch {saved.GlobalBatch}, this run's {here.GlobalBatch}");
        if (saved.StepsPerEpoch != here.StepsPerEpoch) throw new ArgumentException($"{where}: data.steps_per_epoch {saved.StepsPerEpoch}, this run's {here.StepsPerEpoch} (another dataset?)");
    }

    private DataPosition Position() =>
        new(options.Seed, options.GlobalBatch, sampler.StepsPerEpoch, Step / sampler.StepsPerEpoch, (int)(Step % sampler.StepsPerEpoch));

    public void Dispose()
    {
        prefetcher.Dispose();
        optimizer.Dispose();
        bf16?.Shadow.Dispose();
        bf16?.Dispose();
        generator.Dispose();
        buckets?.Dispose();
        expertBuckets?.Dispose();
    }
}
