using System.Globalization;
using System.Text.Json;
using Jetpack.Application.Data;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Data;
using Jetpack.Model.Data.Fixtures;
using Jetpack.Model.Registry;
using Jetpack.Protocol.Jobs;
using Jetpack.Protocol.Telemetry;
using Jetpack.Tests.Telemetry;
using Jetpack.WorkerCluster;
using Xunit.Abstractions;

namespace Jetpack.Coordinator.Tests.Training;

/// <summary>
/// Issue 18 through the coordinator: a submitted job recycles a small V-JetMoE-T (ViT-T at 224², two MoE blocks,
/// 4/8 experts, head sized by the tree's classes) from timm-shaped ViT-S and ViT-T checkpoints, scatters it to two
/// worker processes, trains from a generated ImageNet-like tree, first as class folders and then as the tar shards
/// `jetpack data pack` makes of it, evaluates on val/ and ends with final.safetensors. Each worker's
/// jetpack_data_images_read shows that it read its half of every batch, no more.
/// (GpuWorker.Tests' ImageDataRanksTests checks which shards each rank touches.)
/// </summary>
[Collection(InProcessCoordinators.Name)]
[Trait("Category", "Heavy")]                          // ViT-S + V-JetMoE-T at 224² in 3 processes: run after the other assemblies (scripts/test.sh)
public sealed class ImageDataJobTests(ITestOutputHelper output) : IAsyncLifetime
{
    const int Steps = 3, GlobalBatch = 8, Workers = 2;
    readonly DriverCluster cluster = new();
    TestCoordinator coordinator = null!;
    ImageTree tree = null!;
    string vitSmall = "", vitTiny = "";

    public async Task InitializeAsync()
    {
        coordinator = await cluster.Coordinator();
        tree = ImageTreeGenerator.Write(cluster.Dir.File("imagenet"), classes: 4, trainPerClass: 8, valPerClass: 1, maxSide: 480);
        vitSmall = cluster.Dir.File("vit_small.safetensors");
        vitTiny = cluster.Dir.File("vit_tiny.safetensors");
        using (var m = ModelRegistry.Create("vit_small_patch16_224")) SafetensorsWriter.Write(vitSmall, m.state_dict());
        using (var m = ModelRegistry.Create("vit_tiny_patch16_224")) SafetensorsWriter.Write(vitTiny, m.state_dict());
    }

    public async Task DisposeAsync()
    {
        await coordinator.DisposeAsync();
        await cluster.DisposeAsync();
    }

    string Spec(string name, string dataset, string root) => $"""
        name: {name}
        model: {"{"}base: v_jetmoe_t, core_experts: 4, universal_experts: 8, moe_layers: [10, 11], num_classes: auto{"}"}
        workers: {Workers}
        recycle:
          from: {vitSmall}
          from_variant: vit_small_patch16_224
          target: {vitTiny}
          target_variant: vit_tiny_patch16_224
          method: random
          seed: 5
        data:
          dataset: {dataset}
          root: {root}
          rand_augment: false
          random_erasing: false
          workers: 1
          prefetch: 2
          max_bad_fraction: 0.2
        recipe:
          steps: {Steps}
          global_batch: {GlobalBatch}
          warmup_steps: 1
          seed: 11
        checkpoint_every: {Steps}
        """;

    async Task TrainsToItsFinalModel(WorkerLauncher workers, string job, string dataset, string root)
    {
        await coordinator.Submit(Spec(job, dataset, root));
        var done = await Await.Until(() => coordinator.Status(job), s => s.Phase is JobPhase.Completed or JobPhase.Failed, $"job {job} to end", TimeSpan.FromMinutes(10));
        Assert.True(done.Phase == JobPhase.Completed, $"{dataset}: {done.Phase}: {done.Message}");
        Assert.Equal(((long)Steps, 0), (done.Step, done.Recoveries));

        string outDir = Path.Combine(coordinator.Options.JobsDirectory, job);
        var last = JsonDocument.Parse(File.ReadLines(Path.Combine(outDir, "metrics.jsonl")).Last(l => l.Length > 0)).RootElement;
        Assert.Equal(Steps, last.GetProperty("step").GetInt64());
        Assert.Equal(tree.ValImages, last.GetProperty("eval_images").GetInt32());              // the whole val/ split, at the last step
        Assert.Equal(JsonValueKind.Number, last.GetProperty("top1").ValueKind);
        Assert.Equal(Steps * GlobalBatch / Workers, last.GetProperty("images_read").GetInt64());   // rank 0's own part

        string final = Path.Combine(outDir, FinalModel.FileName);
        using (var reader = SafetensorsReader.Open(final))
        {
            Assert.Equal(Steps.ToString(CultureInfo.InvariantCulture), reader.Metadata[FinalModel.StepKey]);
            Assert.Equal([tree.Classes.Count, 192L], reader.GetHeader("head.weight").Shape);              // num_classes: auto → the tree's 4 classes
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var metrics = await Task.WhenAll(workers.MetricsAddresses.Select(a => http.GetStringAsync($"http://{a}/metrics")));
        for (int r = 0; r < Workers; r++)
            Assert.Equal(Steps * GlobalBatch / Workers, PrometheusSample.Value(metrics[r], MetricNames.DataImagesRead, ("job_id", job)));   // its half of every batch
        output.WriteLine($"{dataset}: completed {Steps} steps on {Workers} workers, top-1 {last.GetProperty("top1").GetDouble():P1} on {tree.ValImages} val images; {final}");
    }

    [Fact]
    public async Task AJobTrainsVJetMoEFromClassFoldersAndFromShardsOnTwoWorkersAndEndsWithItsFinalModel()
    {
        var workers = await cluster.Workers(coordinator.Grpc, Workers, "i");
        await DriverCluster.WaitAlive(coordinator.Workers, coordinator.Call, "i0", "i1");
        await TrainsToItsFinalModel(workers, "folders", "imagefolder", tree.Root);

        string packed = cluster.Dir.File("shards");
        ShardPacker.Pack(tree.Root, packed, ShardPacker.ParseSize("64KiB"));
        await TrainsToItsFinalModel(workers, "shards", "shards", packed);
    }
}
