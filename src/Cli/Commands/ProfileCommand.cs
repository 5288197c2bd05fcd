using System.CommandLine;
using Spectre.Console;
using Jetpack.Model.Recycling;
using Jetpack.Model.Registry;
using Jetpack.Model.Torch;
using Jetpack.Cli.CommandLine;

namespace Jetpack.Cli.Commands;

/// <summary><c>jetpack profile</c>: activation statistics of a dense checkpoint, saved for later recycling runs.</summary>
public static class ProfileCommand
{
    static readonly Option<string> Checkpoint = new("--checkpoint") { Description = "dense checkpoint (.safetensors or .pth)", Required = true };
    static readonly Option<string> Variant = new("--variant") { Description = "its architecture (registry name)", DefaultValueFactory = _ => "vit_small_patch16_224" };
    static readonly Option<string> Out = new("--out") { Description = "statistics file to write (.safetensors)", Required = true };
    static readonly Option<long> Seed = new("--seed") { Description = "seed of the random image subset", DefaultValueFactory = _ => 3407 };

    public static Command Create()
    {
        var cmd = new Command("profile", "Profile a dense model's activations (spec §5.2) for any later recycling recipe: per block, L2, L1 and positive counts of the MLP GELU output, the norm2 output and the attention-projection input, averaged over batches. With --coactivation, also co-activation counts (for --method graph).")
        {
            Checkpoint, Variant, Out, Seed, CommonOptions.Device, CommonOptions.Threads,
        };
        foreach (var o in ProfileData.All) cmd.Add(o);
        cmd.SetAction(r =>
        {
            CommonOptions.ApplyThreads(r.GetValue(CommonOptions.Threads));
            var device = Devices.Parse(r.GetValue(CommonOptions.Device)!);
            var spec = ModelRegistry.Get(r.GetValue(Variant)!);
            var source = ProfileData.From(r);
            if (!source.Given) throw new ArgumentException("give the images: --profile-images DIR or --profile-fashion-mnist");
            using var checkpoint = DenseCheckpoint.Load(r.GetValue(Checkpoint)!, spec);
            var coact = r.GetValue(ProfileData.CoActivation)
                ? ActivationProfiler.SitesOf(spec).Where(s => s.Site.EndsWith(".mlp.act")).Select(s => s.Site).ToHashSet() : null;
            using var stats = ProfileData.Run(source, spec, checkpoint, device, r.GetValue(Seed), coact, StatKinds.All, attentionInputs: true);
            stats.Save(r.GetValue(Out)!, new Dictionary<string, string> { ["checkpoint"] = checkpoint.Path });
            AnsiConsole.MarkupLine($"profiled {stats.Images:N0} images → [bold]{Markup.Escape(r.GetValue(Out)!)}[/]");
            return 0;
        });
        return cmd;
    }
}
