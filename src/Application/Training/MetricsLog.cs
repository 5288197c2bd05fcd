using System.Text.Json;
using System.Text.Json.Nodes;
using Jetpack.Model.Training;

namespace Jetpack.Application.Training;

/// <summary>
/// The one writer of a run's <c>metrics.jsonl</c>: one JSON line per step — step, loss, lr,
/// grad_norm, images_per_s, step_s, eval_loss/top1/top5 (null unless the step evaluated; then also
/// eval_images), data_wait_s (the step's wait for its batches), images_read (this rank's, or rank 0's,
/// images read so far), bad_files (undecodable files met), and when given exchange_s, all_reduce_s, routing (per MoE layer: max_load_share, load_balance,
/// combine_entropy and the <see cref="RoutingSummary.TopExperts"/> busiest expert ids with their load shares; a
/// distributed run's rank 0 reports them over the whole global batch), workers, attempt. On resume the lines up
/// to the start step are kept and the rest dropped, so a resumed run's file equals an uninterrupted one's.
/// Every line is flushed: a crashed run keeps its metrics up to its last step.
/// </summary>
public sealed class MetricsLog : ITrainingObserver, IDisposable
{
    public const string FileName = "metrics.jsonl";

    private readonly StreamWriter writer;
    private readonly int? workers;
    private readonly int? attempt;

    private MetricsLog(StreamWriter writer, int? workers, int? attempt)
    {
        this.writer = writer; this.workers = workers; this.attempt = attempt;
    }

    public string Path { get; private init; } = "";

    /// <summary>Opens <paramref name="path"/> keeping the lines of steps ≤ <paramref name="startStep"/> (0: a fresh file).</summary>
    /// <param name="workers">the run's number of worker processes (written on every line), if distributed</param>
    /// <param name="attempt">the job's attempt number (written on every line), if a coordinator job</param>
    public static MetricsLog Open(string path, long startStep, int? workers = null, int? attempt = null)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        var kept = startStep > 0 && File.Exists(path) ? File.ReadAllLines(path).Where((l, i) => l.Length > 0 && StepOf(l, path, i) <= startStep).ToList() : [];
        File.WriteAllLines(path, kept);
        return new MetricsLog(File.AppendText(path), workers, attempt) { Path = path };
    }

    /// <summary>The step of the file's last line (0 when the file is missing or empty).</summary>
    public static long LastStep(string path)
    {
        var lines = File.Exists(path) ? File.ReadAllLines(path) : [];
        int last = Array.FindLastIndex(lines, l => l.Length > 0);
        return last < 0 ? 0 : StepOf(lines[last], path, last);
    }

    private static long StepOf(string line, string path, int index)
    {
        try { return JsonDocument.Parse(line).RootElement.GetProperty("step").GetInt64(); }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new InvalidDataException($"{path}: line {index + 1}: not a metrics line with a step ({e.Message})", e);
        }
    }

    public void OnStep(StepReport r) => Write(r);

    /// <summary>Writes one step's line (also for steps reported by workers, see <see cref="ProgressMessages"/>).</summary>
    public void Write(StepReport r)
    {
        var line = new JsonObject
        {
            ["step"] = r.Step, ["loss"] = r.Loss, ["lr"] = r.LearningRate, ["grad_norm"] = double.IsFinite(r.GradNorm) ? r.GradNorm : null,
            ["images_per_s"] = r.ImagesPerSecond, ["step_s"] = r.Seconds,
            ["eval_loss"] = r.Eval?.Loss, ["top1"] = r.Eval?.Top1, ["top5"] = r.Eval?.Top5,
        };
        if (r.Eval is { } e) line["eval_images"] = e.Images;
        line["data_wait_s"] = r.DataWaitSeconds;
        line["images_read"] = r.ImagesRead;
        line["bad_files"] = r.BadFiles;
        if (r.ExchangeSeconds is { } x) line["exchange_s"] = x;
        if (r.AllReduceSeconds is { } a) line["all_reduce_s"] = a;
        if (r.Routing is { Count: > 0 } routing) line["routing"] = Routing(routing);
        if (workers is { } w) line["workers"] = w;
        if (attempt is { } n) line["attempt"] = n;
        writer.WriteLine(line.ToJsonString());
        writer.Flush();
    }

    /// <summary>Per MoE layer: the busiest expert's load share, the balance (normalised load entropy), the combine entropy and the top-k expert ids with their shares.</summary>
    static JsonArray Routing(IReadOnlyList<RoutingSummary> routing)
    {
        var layers = new JsonArray();
        foreach (var s in routing)
        {
            var top = new JsonArray();
            foreach (var (expert, share) in s.Top) top.Add(new JsonArray(expert, share));
            layers.Add(new JsonObject
            {
                ["layer"] = s.Layer, ["experts"] = s.Experts, ["max_load_share"] = s.MaxLoadShare, ["load_balance"] = s.LoadBalance,
                ["combine_entropy"] = s.CombineEntropy, ["top_experts"] = top,
            });
        }
        return layers;
    }

    /// <summary>The evaluation on the file's last line, if it has one.</summary>
    public static EvalResult? LastEvaluation(string path)
    {
        var lines = File.Exists(path) ? File.ReadAllLines(path).Where(l => l.Length > 0).ToList() : [];
        if (lines.Count == 0) return null;
        var root = JsonDocument.Parse(lines[^1]).RootElement;
        if (!root.TryGetProperty("top1", out var top1) || top1.ValueKind != JsonValueKind.Number) return null;
        int images = root.TryGetProperty("eval_images", out var n) && n.ValueKind == JsonValueKind.Number ? n.GetInt32() : 0;
        return new EvalResult(root.GetProperty("eval_loss").GetDouble(), top1.GetDouble(), root.GetProperty("top5").GetDouble(), images)
        { Step = root.GetProperty("step").GetInt64() };
    }

    public void Dispose() => writer.Dispose();
}
