using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Models;
using Jetpack.Model.Registry;
using Jetpack.Model.Tests.Distributed;
using Jetpack.Model.Training;

namespace Jetpack.Model.Tests.Checkpoints;

/// <summary>The topology-free training checkpoint refuses what it cannot trust, naming the file and the field.</summary>
public class TrainingCheckpointTests
{
    static readonly TrainerOptions Recipe = new() { Steps = 2, GlobalBatch = 8, WarmupSteps = 1, Mixup = null, Seed = 4 };

    static string SaveOneStep(TempDirectory dir, ModelSpec spec)
    {
        using var data = Ranks.Data(16, 3);
        torch.manual_seed(61);
        using var model = ModelRegistry.Create(spec);
        using var trainer = new Trainer(spec, model, data, Recipe);
        trainer.TrainStep();
        var path = dir.File("ckpt");
        trainer.Save(path);
        return path;
    }

    static void Restore(string path, ModelSpec spec, TrainerOptions? recipe = null)
    {
        using var data = Ranks.Data(16, 3);
        using var model = ModelRegistry.Create(spec);
        using var trainer = new Trainer(spec, model, data, recipe ?? Recipe);
        trainer.Restore(path);
    }

    [Fact]
    public void TheManifestListsEveryFileWithItsHash()
    {
        using var dir = new TempDirectory();
        var path = SaveOneStep(dir, Ranks.Tiny);
        var m = TrainingCheckpoint.ReadManifest(path);
        Assert.Equal(TrainingCheckpoint.FormatVersion, m.FormatVersion);
        Assert.Equal(1, m.Step);
        Assert.Equal(1, m.OptimizerSteps);
        Assert.Equal(new DataPosition(4, 8, 2, 0, 1), m.Data);
        Assert.Equal([TrainingCheckpoint.ExpertFile(0, 1), TrainingCheckpoint.ReplicatedFile], m.Sha256.Keys.Order());
        Assert.Equal(["blocks.1.mlp", "blocks.2.mlp"], m.ExpertFiles[0].Layers.Select(l => l.Prefix));
        Assert.Equal(new LayerRange("blocks.1.mlp", 0, 5, 0, 7), m.ExpertFiles[0].Layers[0]);
        using var experts = SafetensorsReader.Open(Path.Combine(path, TrainingCheckpoint.ExpertFile(0, 1)));
        Assert.Contains("m.blocks.1.mlp.core_experts.vit_fc1.weight", experts.Names);
        Assert.DoesNotContain(experts.Names, n => n.Contains("phi"));          // routing is replicated
    }

    [Fact]
    public void AnotherModelIsRefusedNamingTheManifestAndTheField()
    {
        using var dir = new TempDirectory();
        var path = SaveOneStep(dir, Ranks.Tiny);
        var other = Ranks.Tiny with { Vit = Ranks.Tiny.Vit! with { Moe = Ranks.Tiny.Vit.Moe! with { UniversalExperts = 6 } } };
        var e = Assert.Throws<CheckpointMismatchException>(() => Restore(path, other));
        Assert.Contains(TrainingCheckpoint.ManifestFile, e.Message);
        Assert.Contains("experts", e.Message);
        var e2 = Assert.Throws<ArgumentException>(() => Restore(path, Ranks.Tiny, Recipe with { Seed = 5 }));
        Assert.Contains("data.seed", e2.Message);
    }

    [Fact]
    public void AMissingFileIsRefusedByName()
    {
        using var dir = new TempDirectory();
        var path = SaveOneStep(dir, Ranks.Tiny);
        File.Delete(Path.Combine(path, TrainingCheckpoint.ReplicatedFile));
        var e = Assert.Throws<InvalidDataException>(() => Restore(path, Ranks.Tiny));
        Assert.Contains(TrainingCheckpoint.ReplicatedFile, e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void AnEditedManifestHashIsRefused()
    {
        using var dir = new TempDirectory();
        var path = SaveOneStep(dir, Ranks.Tiny);
        var manifest = Path.Combine(path, TrainingCheckpoint.ManifestFile);
        var m = TrainingCheckpoint.ReadManifest(path);
        var sha = m.Sha256[TrainingCheckpoint.ReplicatedFile];
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace(sha, new string('0', sha.Length)));
        var e = Assert.Throws<InvalidDataException>(() => Restore(path, Ranks.Tiny));
        Assert.Contains(TrainingCheckpoint.ReplicatedFile, e.Message);
        Assert.Contains("SHA-256", e.Message);
    }

    [Fact]
    public void SavingOverAnOlderCheckpointReplacesItWhole()
    {
        using var dir = new TempDirectory();
        var path = SaveOneStep(dir, Ranks.Tiny);
        File.WriteAllText(Path.Combine(path, "stray.txt"), "from before");
        SaveOneStep(dir, Ranks.Tiny);
        Assert.False(File.Exists(Path.Combine(path, "stray.txt")));
        Assert.Single(Directory.GetDirectories(dir.FullPath));                 // no .tmp-* or .old-* left behind
    }

    /// <summary>
    /// The scatter of a recovery: each rank's part (ReadRank, for a world of 3 — 3 divides neither
    /// 5 core nor 7 universal experts) holds exactly its rows of every expert tensor and moment, the
    /// parts put together are the checkpoint, and the whole part restored with RestoreScattered
    /// gives the model and optimizer that Restore from the directory gives.
    /// </summary>
    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && (a.numel() == 0 || a.eq(b).all().item<bool>());

    [Fact]
    public void ReadRankReslicesParametersAndMomentsAndRestoreScatteredEqualsRestore()
    {
        using var dir = new TempDirectory();
        var path = SaveOneStep(dir, Ranks.Tiny);
        Dictionary<string, Tensor> Part(int world, int rank) =>
            TrainingCheckpoint.ReadRank(path, Ranks.Tiny, world, rank).ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var whole = Part(1, 0);
        var parts = Enumerable.Range(0, 3).Select(r => Part(3, r)).ToList();
        Assert.Contains("m.blocks.1.mlp.core_experts.vit_fc1.weight", whole.Keys);
        foreach (var (name, t) in whole)
        {
            Assert.All(parts, p => Assert.Contains(name, p.Keys));
            if (Jetpack.Model.Distributed.ExpertKeys.IsExpert(Ranks.Tiny, name[2..]))
            {
                var rows = parts.Select(p => p[name].shape[0]).ToList();
                Assert.True(rows.Sum() == t.shape[0] && rows.Distinct().Count() > 1, $"{name}: rows per rank {string.Join(", ", rows)} of {t.shape[0]}");
                Assert.True(Same(torch.cat(parts.Select(p => p[name]).ToArray(), 0), t), $"{name}: the ranks' rows do not make up the saved tensor");
            }
            else Assert.All(parts, p => Assert.True(Same(p[name], t), $"{name}: replicated entries travel whole"));
        }

        var m = TrainingCheckpoint.ReadManifest(path);
        using var data = Ranks.Data(16, 3);
        using var fromDir = ModelRegistry.Create(Ranks.Tiny);
        using var a = new Trainer(Ranks.Tiny, fromDir, data, Recipe);
        a.Restore(path);
        using var fromParts = ModelRegistry.Create(Ranks.Tiny);
        using var b = new Trainer(Ranks.Tiny, fromParts, data, Recipe);
        b.RestoreScattered(whole, m.Step, m.OptimizerSteps, m.Data, "test");
        Assert.Equal(a.Step, b.Step);
        var sa = fromDir.state_dict();
        foreach (var (key, t) in fromParts.state_dict()) Assert.True(Same(t, sa[key]), $"{key} differs after RestoreScattered");
        Assert.Equal(a.TrainStep().Loss, b.TrainStep().Loss);                  // moments and step count restored too

        var wrong = new Dictionary<string, Tensor>(whole);
        wrong.Remove("p.head.weight");
        using var other = ModelRegistry.Create(Ranks.Tiny);
        using var c = new Trainer(Ranks.Tiny, other, data, Recipe);
        var e = Assert.Throws<CheckpointMismatchException>(() => c.RestoreScattered(wrong, m.Step, m.OptimizerSteps, m.Data, "the shard of X"));
        Assert.Contains("missing: [head.weight]", e.Message);
        Assert.Contains("the shard of X", e.Message);
    }
}
