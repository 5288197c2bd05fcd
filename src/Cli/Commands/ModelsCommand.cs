using System.CommandLine;
using Spectre.Console;
using TorchSharp;
using Jetpack.Model.Registry;

namespace Jetpack.Cli.Commands;

/// <summary><c>jetpack models</c>: the registry, with parameter counts and forward GMACs.</summary>
public static class ModelsCommand
{
    public static Command Create()
    {
        var cmd = new Command("models", "List the registered model variants with parameter counts (built on the meta device: no memory) and forward GMACs per image.");
        cmd.SetAction(_ =>
        {
            var table = new Table().AddColumns("variant", "params (M)", "GMACs", "what it is");
            foreach (var name in ModelRegistry.Names)
            {
                var spec = ModelRegistry.Get(name);
                using var model = ModelRegistry.Create(spec, torch.META);
                table.AddRow(name, $"{ModelRegistry.ParameterCount(model) / 1e6:F1}", $"{FlopCounter.ForwardMacs(spec) / 1e9:F2}",
                             Markup.Escape(ModelRegistry.Describe(name)));
            }
            AnsiConsole.Write(table);
            return 0;
        });
        return cmd;
    }
}
