using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Distributed;
using Jetpack.Model.Registry;
using Jetpack.Model.Training;
using Xunit.Abstractions;

namespace Jetpack.Model.Tests.Distributed;

/// <summary>
/// Timing of in-process expert parallelism on v_jetmoe_fmnist (24/48 experts in 3 blocks, batch 64):
/// one process vs the same through the exchange function on 1, 2, 3 ranks (threads sharing 2 cores,
/// so this measures overhead, not speed-up). Runs only with JETPACK_EP_BENCH=steps; prints ms/step.
/// </summary>
public class ExpertParallelBench(ITestOutputHelper output)
{
    [Fact]
    public void StepTimes()
    {
        if (!int.TryParse(Environment.GetEnvironmentVariable("JETPACK_EP_BENCH"), out int steps)) return;
        var spec = ModelRegistry.Get("v_jetmoe_fmnist");
        var recipe = new TrainerOptions { Steps = steps + 2, GlobalBatch = 64, WarmupSteps = 1, Mixup = null };
        using var data = Ranks.Data(64 * (steps + 2), 1, size: 28);
        torch.manual_seed(1);
        Dictionary<string, Tensor> initial;
        using (var m = ModelRegistry.Create(spec)) initial = Ranks.Clone(m.state_dict());

        double Time(Func<Trainer> make)
        {
            using var t = make();
            t.TrainStep(); t.TrainStep();                                    // warm-up
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++) t.TrainStep();
            return sw.Elapsed.TotalMilliseconds / steps;
        }
        // Every run on a fresh thread: measured on xunit's own test thread, the same plain step took
        // ~4.5 s instead of ~0.25 s (cause not investigated; the comparison must not mix the two).
        double plain = Ranks.Run(1, _ => Time(() => { var m = ModelRegistry.Create(spec); m.load_state_dict(initial); return new Trainer(spec, m, data, recipe); }))[0];
        output.WriteLine($"one process: {plain:F0} ms/step");
        foreach (int world in new[] { 1, 2, 3 })
        {
            var hub = new InProcessHub(world, TimeSpan.FromSeconds(120));
            var ms = Ranks.Run(world, rank => Time(() =>
            {
                var context = new DistributedContext(rank, world, hub[rank], hub[rank]);
                var m = ModelRegistry.Create(spec, CPU, context.Shard);
                m.load_state_dict(ExpertKeys.Slice(spec, initial, world, rank));
                return new Trainer(spec, m, data, recipe, CPU, context);
            }));
            output.WriteLine($"{world} in-process rank(s): {ms.Max():F0} ms/step (slowest rank)");
        }
    }
}
