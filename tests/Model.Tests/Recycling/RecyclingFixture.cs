using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Models;
using Jetpack.Model.Recycling;
using Jetpack.Model.Registry;
using Jetpack.Model.Tests.Checkpoints;

namespace Jetpack.Model.Tests.Recycling;

/// <summary>
/// Fashion-MNIST-sized predecessor (width 128) and target (width 64) checkpoints on disk, and the
/// predecessor's activation statistics from profiling random images (co-activation on for the MoE blocks).
/// </summary>
public sealed class RecyclingFixture : IDisposable
{
    public readonly TempDirectory Dir = new();
    public readonly ModelSpec Successor = ModelRegistry.Get("v_jetmoe_fmnist");
    public readonly ModelSpec PredecessorSpec = ModelRegistry.Get("vit_fmnist_pred");
    public readonly ModelSpec TargetSpec = ModelRegistry.Get("vit_fmnist_t");
    public readonly DenseCheckpoint Predecessor;
    public readonly DenseCheckpoint Target;
    public readonly ActivationStats Stats;

    public RecyclingFixture()
    {
        torch.manual_seed(42);
        using (var pred = ModelRegistry.Create(PredecessorSpec)) SafetensorsWriter.Write(Dir.File("pred.safetensors"), pred.state_dict());
        using (var tgt = ModelRegistry.Create(TargetSpec)) SafetensorsWriter.Write(Dir.File("target.safetensors"), tgt.state_dict());
        Predecessor = DenseCheckpoint.Load(Dir.File("pred.safetensors"), PredecessorSpec);
        Target = DenseCheckpoint.Load(Dir.File("target.safetensors"), TargetSpec);

        using var model = ModelRegistry.Create(PredecessorSpec);
        ModelCheckpoint.LoadWeights(SafetensorsReader.Open(Dir.File("pred.safetensors")), model, strict: true);
        var gen = new Generator(7);
        var batches = Enumerable.Range(0, 4).Select(_ => torch.randn([16, 1, 28, 28], generator: gen)).ToList();
        Stats = ActivationProfiler.Profile(PredecessorSpec, model, batches, new HashSet<string> { "blocks.3.mlp.act", "blocks.4.mlp.act", "blocks.5.mlp.act" });
        foreach (var b in batches) b.Dispose();
    }

    public RecycleResult Recycle(RecycleOptions options, ModelSpec? successor = null) =>
        CheckpointRecycler.Recycle(successor ?? Successor, PredecessorSpec, Predecessor.Tensors, Target.Tensors, Stats, options);

    public void Dispose()
    {
        Predecessor.Dispose(); Target.Dispose(); Stats.Dispose(); Dir.Dispose();
    }
}
