using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Checkpoints;
using Jetpack.Model.Recycling;
using Jetpack.Model.Registry;
using Jetpack.Model.Torch;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Cli.Bench;

/// <summary>
/// <c>jetpack bench recycle</c>: (1) profiling throughput against plain eval inference of the
/// predecessor, interleaved in one run; (2) the time to build V-JetMoE-T from ViT-S/16- and
/// ViT-T/16-shaped checkpoints given the statistics (load, recycle, save).
/// </summary>
public static class BenchRecycle
{
    public static Command Create()
    {
        var batch = new Option<int>("--batch") { Description = "profiling batch (images)", DefaultValueFactory = _ => 32 };
        var rounds = new Option<int>("--rounds") { Description = "timed batches of each kind (interleaved)", DefaultValueFactory = _ => 4 };
        var output = new Option<string>("--out") { Description = "folder for bench-recycle.json", DefaultValueFactory = _ => "results/bench" };
        var cmd = new Command("recycle", "Profiling throughput vs plain eval inference of ViT-S/16 (same run), and the time to recycle V-JetMoE-T from ViT-S/16 + ViT-T/16-shaped checkpoints given statistics.")
        {
            batch, rounds, output, CommonOptions.Device, CommonOptions.Threads,
        };
        cmd.SetAction(r => Run(r.GetValue(batch), r.GetValue(rounds), r.GetValue(output)!, r.GetValue(CommonOptions.Device)!, r.GetValue(CommonOptions.Threads)));
        return cmd;
    }

    static int Run(int batch, int rounds, string outDir, string deviceSpec, int threads)
    {
        var device = Devices.Parse(deviceSpec);
        CommonOptions.ApplyThreads(threads);
        var predSpec = ModelRegistry.Get("vit_small_patch16_224");
        var targetSpec = ModelRegistry.Get("vit_tiny_patch16_224");
        var successor = ModelRegistry.Get("v_jetmoe_t");
        string dir = Path.Combine(Path.GetTempPath(), "jetpack-bench-recycle-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var report = new Dictionary<string, object?> { ["batch"] = batch, ["rounds"] = rounds, ["threads"] = torch.get_num_threads() };
        try
        {
            using (var pred = ModelRegistry.Create(predSpec)) SafetensorsWriter.Write(Path.Combine(dir, "vit_s.safetensors"), pred.state_dict());
            using (var t = ModelRegistry.Create(targetSpec)) SafetensorsWriter.Write(Path.Combine(dir, "vit_t.safetensors"), t.state_dict());

            // 1. profiling vs plain eval, interleaved so drift hits both alike
            using var model = ModelRegistry.Create(predSpec, device);
            model.eval();
            using var images = torch.randn([batch, 3, 224, 224], generator: new Generator(1)).to(device);
            double Plain()
            {
                var sw = Stopwatch.StartNew();
                using (no_grad()) using (var scope = NewDisposeScope()) model.forward(images).sum().item<float>();
                return sw.Elapsed.TotalSeconds;
            }
            double Profiled(ISet<string>? coact, StatKinds kinds, bool attention)
            {
                var sw = Stopwatch.StartNew();
                using var s = ActivationProfiler.Profile(predSpec, model, [images], coact, null, kinds, attention);
                return sw.Elapsed.TotalSeconds;
            }
            Plain(); Profiled(null, StatKinds.L2, false);                                // warm-up
            var plain = new List<double>(); var profiled = new List<double>(); var full = new List<double>(); var withCoact = new List<double>();
            var moeSites = successor.MoeLayers().Select(l => $"{l.Prefix}.act").ToHashSet();
            AnsiConsole.Status().Start("timing eval vs profiling…", _ =>
            {
                for (int i = 0; i < rounds; i++)
                {
                    plain.Add(Plain());
                    profiled.Add(Profiled(null, StatKinds.L2, false));                   // what `recycle` collects by default
                    full.Add(Profiled(null, StatKinds.All, true));                       // what `profile` saves
                    withCoact.Add(Profiled(moeSites, StatKinds.L2, false));
                }
            });
            report["eval_images_per_s"] = batch / plain.Min();
            report["profiling_images_per_s"] = batch / profiled.Min();
            report["profiling_over_eval"] = plain.Min() / profiled.Min();
            report["profiling_all_statistics_images_per_s"] = batch / full.Min();
            report["profiling_all_statistics_over_eval"] = plain.Min() / full.Min();
            report["profiling_with_coactivation_images_per_s"] = batch / withCoact.Min();

            // 2. build V-JetMoE-T given statistics: load both checkpoints, recycle, save
            using var stats = ActivationProfiler.Profile(predSpec, model, [images], null, null, StatKinds.L2, false);
            var sw = Stopwatch.StartNew();
            using var predCkpt = DenseCheckpoint.Load(Path.Combine(dir, "vit_s.safetensors"), predSpec);
            using var targetCkpt = DenseCheckpoint.Load(Path.Combine(dir, "vit_t.safetensors"), targetSpec);
            double load = sw.Elapsed.TotalSeconds;
            using var result = CheckpointRecycler.Recycle(successor, predSpec, predCkpt.Tensors, targetCkpt.Tensors, stats, new RecycleOptions());
            double recycle = sw.Elapsed.TotalSeconds - load;
            ModelCheckpoint.Save(Path.Combine(dir, "v_jetmoe_t.safetensors"), successor, result.Model);
            double total = sw.Elapsed.TotalSeconds;
            report["build_load_s"] = load;
            report["build_recycle_s"] = recycle;
            report["build_save_s"] = total - load - recycle;
            report["build_total_s"] = total;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "bench-recycle.json"), JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
        var table = new Table().AddColumns("measure", "value");
        foreach (var (k, v) in report) table.AddRow(k, v is double d ? $"{d:G4}" : $"{v}");
        AnsiConsole.Write(table);
        return 0;
    }
}
