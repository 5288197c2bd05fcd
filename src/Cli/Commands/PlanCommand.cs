using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Jetpack.Model.Distributed;
using Jetpack.Model.Registry;

namespace Jetpack.Cli.Commands;

/// <summary>
/// <c>jetpack plan</c> (issue 19): projects a step of a model onto N devices of F TFLOP/s joined by
/// links of B Gbit/s, for every expert-parallel degree G dividing N (or the one asked for): compute,
/// all-to-all, all-reduce and memory per device, from the analytic costs of the layout
/// (<see cref="LayoutCosts"/>) and the constants `jetpack bench scaling` fitted on this machine
/// (<see cref="StepTimeModel"/>: the fraction of GEMM peak a training step reaches, the fraction of
/// memory bandwidth its parameter path reaches, the per-message and per-ring-step overheads). What it cannot know: activation memory, NCCL's efficiency, overlap of
/// communication with compute (none is assumed).
/// </summary>
public static class PlanCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "the model projected: " + Jetpack.Coordinator.Jobs.ModelArgument.Help, Required = true };
        var gpus = new Option<int>("--gpus") { Description = "devices", Required = true };
        var tflops = new Option<double>("--gpu-tflops") { Description = "peak TFLOP/s of one device at the training precision", Required = true };
        var link = new Option<double>("--link-gbps") { Description = "link bandwidth per device, Gbit/s", Required = true };
        var memory = new Option<double>("--gpu-mem-gbps") { Description = "memory bandwidth of one device, GB/s: the parameter path (optimizer, gradients) is scaled by the share of this machine's bandwidth it reached in `bench scaling`", DefaultValueFactory = _ => 2000 };
        var ep = new Option<int?>("--expert-parallel") { Description = "G, ranks per expert group (must divide --gpus); left out: every divisor, the fastest marked" };
        var batch = new Option<int>("--batch") { Description = "global batch per step", DefaultValueFactory = _ => 1024 };
        var fit = new Option<string>("--fit") { Description = "bench-scaling.json holding the fitted constants", DefaultValueFactory = _ => "docs/measured/scaling/bench-scaling.json" };
        var cmd = new Command("plan", "Project a training step onto a GPU cluster: compute / all-to-all / all-reduce time and memory per device for each expert-parallel degree G, with constants fitted by `jetpack bench scaling`.")
        {
            model, gpus, tflops, link, memory, ep, batch, fit,
        };
        cmd.SetAction(r => Run(r.GetValue(model)!, r.GetValue(gpus), r.GetValue(tflops), r.GetValue(link), r.GetValue(memory), r.GetValue(ep), r.GetValue(batch), r.GetValue(fit)!));
        return cmd;
    }

    /// <summary>The fitted constants of a bench-scaling.json; errors name the file.</summary>
    public static StepTimeModel ReadFit(string path)
    {
        if (!File.Exists(path)) throw new ArgumentException($"--fit {path}: not found (run `jetpack bench scaling --out DIR` and pass DIR/{Bench.BenchScaling.JsonFile})");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            if (!doc.RootElement.TryGetProperty("fit", out var f)) throw new ArgumentException($"--fit {path}: has no 'fit' object");
            return f.Deserialize<StepTimeModel>(new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower })
                   ?? throw new ArgumentException($"--fit {path}: 'fit' is empty");
        }
        catch (JsonException e) { throw new ArgumentException($"--fit {path}: not valid JSON: {e.Message}", e); }
    }

    public sealed record Projection(int G, double ComputeSeconds, double AllToAllSeconds, double AllReduceSeconds, double StateBytesPerDevice)
    {
        public double StepSeconds => ComputeSeconds + AllToAllSeconds + AllReduceSeconds;
    }

    /// <summary>One device's step under layout (N, G): each device is one rank with a device of its own (no shared cores).</summary>
    public static Projection Project(Jetpack.Model.Models.ModelSpec spec, int gpus, int g, double tflops, double linkGbps, double memoryGBps, int batch, StepTimeModel fit)
    {
        var cost = LayoutCosts.Of(spec, new ParallelLayout(gpus, g), batch);
        double rate = tflops * 1e12 * fit.ComputeEfficiency;
        // the parameter path at the share of memory bandwidth it reached here (none where the fit has no such term)
        double parameterPath = fit.ParameterPathEfficiency > 0 ? (cost.ExpertStateBytes + cost.ReplicatedStateBytes) / (memoryGBps * 1e9 * fit.ParameterPathEfficiency) : 0;
        double bytesPerSecond = linkGbps / 8 * 1e9;
        double a2a = cost.ExchangeMessages == 0 ? 0 : cost.ExchangeMessages * fit.MessageSeconds + cost.ExchangeBytes / bytesPerSecond;
        double ar = gpus <= 1 ? 0 : 2 * (gpus - 1) * fit.RingStepSeconds + cost.AllReduceBytes / bytesPerSecond;
        // parameters + AdamW moments (the costs) + fp32 gradients (a third of that)
        double state = (cost.ExpertStateBytes + cost.ReplicatedStateBytes) * 4 / 3;
        return new Projection(g, cost.ComputeFlops / rate + parameterPath, a2a, ar, state);
    }

    static int Run(string modelName, int gpus, double tflops, double linkGbps, double memoryGBps, int? ep, int batch, string fitPath)
    {
        if (gpus < 1) throw new ArgumentException($"--gpus must be ≥ 1 (got {gpus})");
        if (tflops <= 0 || linkGbps <= 0 || memoryGBps <= 0) throw new ArgumentException($"--gpu-tflops, --link-gbps and --gpu-mem-gbps must be > 0 (got {tflops}, {linkGbps}, {memoryGBps})");
        if (batch < gpus) throw new ArgumentException($"--batch must be ≥ --gpus (got {batch})");
        if (ep is { } e && (e < 1 || gpus % e != 0)) throw new ArgumentException($"--expert-parallel: {e} must be ≥ 1 and divide --gpus {gpus}");
        var fit = ReadFit(fitPath);
        var spec = Jetpack.Coordinator.Jobs.ModelArgument.Resolve(modelName);
        var degrees = ep is { } one ? [one] : Enumerable.Range(1, gpus).Where(d => gpus % d == 0).ToArray();
        var rows = degrees.Select(g => Project(spec, gpus, g, tflops, linkGbps, memoryGBps, batch, fit)).ToList();
        var best = rows.MinBy(r => r.StepSeconds)!;
        var inv = CultureInfo.InvariantCulture;
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(ModelRegistry.Summary(spec))}[/]");
        AnsiConsole.MarkupLine($"batch {batch} on {gpus} device(s) of {tflops.ToString(inv)} TFLOP/s and {memoryGBps.ToString(inv)} GB/s, links {linkGbps.ToString(inv)} Gbit/s; " +
                               $"constants from {Markup.Escape(fitPath)}: {100 * fit.ComputeEfficiency:F1} % of GEMM peak, parameter path at {100 * fit.ParameterPathEfficiency:F1} % of memory bandwidth, {1e6 * fit.MessageSeconds:F0} µs per all-to-all message, {1e6 * fit.RingStepSeconds:F0} µs per ring step");
        var table = new Table().AddColumns("G", "R", "compute ms", "all-to-all ms", "all-reduce ms", "step ms", "params+grads+AdamW GB/device", "");
        foreach (var r in rows)
            table.AddRow(r.G.ToString(inv), (gpus / r.G).ToString(inv), (1e3 * r.ComputeSeconds).ToString("F2", inv), (1e3 * r.AllToAllSeconds).ToString("F2", inv),
                         (1e3 * r.AllReduceSeconds).ToString("F2", inv), (1e3 * r.StepSeconds).ToString("F2", inv), (r.StateBytesPerDevice / 1e9).ToString("F3", inv),
                         ReferenceEquals(r, best) && rows.Count > 1 ? "[green]fastest[/]" : "");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"fastest: G = {best.G} ({1e3 * best.StepSeconds:F2} ms/step). Not modelled: activation memory, overlap of communication with compute, the collective library's own efficiency.");
        return 0;
    }
}
