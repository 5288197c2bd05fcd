using System.CommandLine;
using System.Diagnostics;
using Spectre.Console;
using TorchSharp;
using Jetpack.Model.Registry;
using Jetpack.Model.Torch;
using Jetpack.Cli.CommandLine;
using Jetpack.Cli.Runs;

namespace Jetpack.Cli.Commands;

/// <summary><c>jetpack smoke</c>: build a registered model and train it for a few steps on random images.</summary>
public static class SmokeCommand
{
    public static Command Create()
    {
        var variant = new Option<string>("--variant") { Description = "registered model variant (see `jetpack models`)", DefaultValueFactory = _ => "v_jetmoe_t" };
        var batch = new Option<int>("--batch") { Description = "images per step", DefaultValueFactory = _ => 8 };
        var steps = new Option<int>("--steps") { Description = "training steps (forward + backward + AdamW)", DefaultValueFactory = _ => 3 };
        var seed = new Option<long>("--seed") { Description = "seed for weights and the random images", DefaultValueFactory = _ => 0 };
        var save = new Option<string?>("--save") { Description = "write the trained model as a checkpoint (.safetensors)" };
        var cmd = new Command("smoke", "Build a model from the registry and run a few real training steps on random images: prints parameter count, loss and time per step.")
        {
            variant, batch, steps, seed, save, CommonOptions.Device, CommonOptions.Threads,
        };
        cmd.SetAction(r => Run(r.GetValue(variant)!, r.GetValue(batch), r.GetValue(steps), r.GetValue(seed), r.GetValue(save),
                                r.GetValue(CommonOptions.Device)!, r.GetValue(CommonOptions.Threads)));
        return cmd;
    }

    static int Run(string variantName, int batch, int steps, long seed, string? save, string deviceSpec, int threads)
    {
        if (batch < 1 || steps < 1) throw new ArgumentException("--batch and --steps must be ≥ 1");
        var spec = ModelRegistry.Get(variantName);
        var device = Devices.Parse(deviceSpec);
        CommonOptions.ApplyThreads(threads);
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(variantName)}[/]: {Markup.Escape(ModelRegistry.Describe(variantName))}");

        var build = Stopwatch.StartNew();
        using var run = new SyntheticTraining(spec, batch, device, seed);
        AnsiConsole.MarkupLine($"parameters: [bold]{run.ParameterCount / 1e6:F1}M[/] ({run.ParameterCount:N0}), built in {build.Elapsed.TotalSeconds:F1} s on {device}, {torch.get_num_threads()} threads");

        var table = new Table().AddColumns("step", "loss", "seconds", "images/s", "forward", "backward", "AdamW", "GC");
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask($"training {steps} steps, batch {batch}", maxValue: steps);
                for (int s = 1; s <= steps; s++)
                {
                    var t = run.TimedStep();
                    if (!double.IsFinite(t.Loss)) throw new InvalidOperationException($"step {s}: loss is {t.Loss}");
                    table.AddRow($"{s}", $"{t.Loss:F4}", $"{t.Total:F2}", $"{batch / t.Total:F1}",
                                 $"{t.Forward:F2}", $"{t.Backward:F2}", $"{t.Optimizer:F2}", $"{t.Cleanup:F2}");
                    task.Increment(1);
                }
            });
        AnsiConsole.Write(table);
        if (save is not null)
        {
            run.Save(save);
            AnsiConsole.MarkupLine($"written: {Markup.Escape(save)}");
        }
        return 0;
    }
}
