using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Data;
using Jetpack.Model.Models;

namespace Jetpack.Model.Tests.Distributed;

/// <summary>Runs one body per rank, each on its own thread (grad mode and dispose scopes are per thread).</summary>
static class Ranks
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    /// <remarks>Also linked into Application.Tests (one home for running ranks on threads).</remarks>
    public static T[] Run<T>(int world, Func<int, T> body, TimeSpan? deadline = null)
    {
        var limit = deadline ?? Deadline;
        var results = new T[world];
        var errors = new Exception?[world];
        var threads = Enumerable.Range(0, world).Select(r => new Thread(() =>
        {
            try { results[r] = body(r); }
            catch (Exception e) { errors[r] = e; }
        }, 16 << 20)
        { Name = $"rank {r}" }).ToArray();
        foreach (var t in threads) t.Start();
        for (int r = 0; r < world; r++)
            if (!threads[r].Join(limit)) throw new TimeoutException($"rank {r} of {world} did not finish within {limit.TotalSeconds} s");
        var failed = errors.Select((e, r) => (e, r)).Where(x => x.e is not null).ToList();
        if (failed.Count > 0)
            throw new AggregateException($"ranks {string.Join(", ", failed.Select(f => f.r))} failed", failed.Select(f => f.e!));
        return results;
    }

    /// <summary>D=32, depth 3, SpheroMoE in blocks 1 and 2 with 5 core + 7 universal experts (2 and 3 divide neither); every random regulariser off.</summary>
    public static readonly ModelSpec Tiny = new("tiny_expert_parallel", Vit: new VitConfig
    {
        ImageSize = 8, PatchSize = 4, InChannels = 1, NumClasses = 10, Dim = 32, Depth = 3, Heads = 2, Pool = PoolKind.Avg,
        Moe = new MoeConfig
        {
            Kind = MoeKind.Sphero, Layers = [1, 2], CoreExperts = 5, UniversalExperts = 7,
            ExpertDropout = 0, MoeDropPathRate = 0, NoiseStd = 0,
        },
    });

    public static TensorDataset Data(int n, ulong seed, int size = 8)
    {
        var gen = new Generator(seed);
        var labels = torch.randint(0, 10, [n], generator: gen);
        var images = torch.randn([n, 1, size, size], generator: gen) * 0.5 + labels.to(ScalarType.Float32).view(n, 1, 1, 1) / 5.0;
        return new TensorDataset(images, labels, 10);
    }

    public static Dictionary<string, Tensor> Clone(IEnumerable<KeyValuePair<string, Tensor>> state) =>
        state.ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    /// <summary>max |a − b| / max(1e-3, max |b|), the relative deviation of a tensor.</summary>
    public static double RelativeDeviation(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        if (!a.shape.SequenceEqual(b.shape)) throw new ArgumentException($"shapes [{string.Join(", ", a.shape)}] vs [{string.Join(", ", b.shape)}]");
        if (a.numel() == 0) return 0;
        double diff = (a - b).abs().max().item<float>();
        double scale = Math.Max(1e-3, b.abs().max().item<float>());
        return diff / scale;
    }
}

/// <summary>
/// A dataset with seeded per-sample "augmentation": each image gets a shift and a flip drawn from
/// (batch seed, dataset index) only, as <c>AugmentedDataset</c> draws its transforms — so the same
/// image is augmented the same whichever rank or position loads it.
/// </summary>
sealed class SeededShiftDataset(Jetpack.Model.Data.TensorDataset inner) : Jetpack.Model.Data.IImageDataset, Jetpack.Model.Data.Augment.ISeededBatches
{
    public int Count => inner.Count;
    public int NumClasses => inner.NumClasses;
    public IReadOnlyList<string> ClassNames => inner.ClassNames;
    public int LabelOf(int index) => inner.LabelOf(index);
    public (Tensor Image, int Label) Get(int index) => inner.Get(index);
    public (Tensor Images, Tensor Labels) Batch(IReadOnlyList<int> indices) => Batch(indices, 0);

    public (Tensor Images, Tensor Labels) Batch(IReadOnlyList<int> indices, ulong batchSeed)
    {
        using var scope = NewDisposeScope();
        var (images, labels) = inner.Batch(indices);
        var shifted = images.clone();
        for (int i = 0; i < indices.Count; i++)
        {
            ulong r = Jetpack.Model.Data.SplitMix64.Mix(batchSeed ^ Jetpack.Model.Data.SplitMix64.Mix((ulong)indices[i]));
            var one = shifted.narrow(0, i, 1);
            one.add_((double)(r % 1000) / 1000.0 - 0.5);
            if ((r >> 20) % 2 == 1) one.copy_(one.flip(3));
        }
        return (shifted.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }
}
