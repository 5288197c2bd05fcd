using System.Text.Json;
using Jetpack.Application.Training;
using Jetpack.Model.Training;

namespace Jetpack.Application.Tests.Training;

/// <summary>metrics.jsonl: one line per step with today's field names; a resume keeps the lines up to its start step.</summary>
public sealed class MetricsLogTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("jetpack-metrics-").FullName;
    string File(string name = MetricsLog.FileName) => Path.Combine(dir, name);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static StepReport Step(long step, EvalResult? eval = null) => new(step, 2.0 / step, 1e-3, 0.5, 16, 0.25, Eval: eval);

    List<JsonElement> Lines() => System.IO.File.ReadAllLines(File()).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    [Fact]
    public void WritesOneLinePerStepWithTheEvaluationOnEvaluatedSteps()
    {
        using (var log = MetricsLog.Open(File(), startStep: 0))
        {
            log.OnStep(Step(1));
            log.OnStep(Step(2, new EvalResult(1.5, 0.25, 0.75, 40)));
        }
        var lines = Lines();
        Assert.Equal([1L, 2L], lines.Select(l => l.GetProperty("step").GetInt64()));
        Assert.Equal(JsonValueKind.Null, lines[0].GetProperty("top1").ValueKind);
        Assert.Equal(64, lines[0].GetProperty("images_per_s").GetDouble());
        Assert.False(lines[0].TryGetProperty("eval_images", out _));
        Assert.Equal((1.5, 0.25, 0.75, 40), (lines[1].GetProperty("eval_loss").GetDouble(), lines[1].GetProperty("top1").GetDouble(),
                                             lines[1].GetProperty("top5").GetDouble(), lines[1].GetProperty("eval_images").GetInt32()));
        Assert.False(lines[1].TryGetProperty("workers", out _));
        Assert.Equal((2L, 40), (MetricsLog.LastEvaluation(File())!.Step, MetricsLog.LastEvaluation(File())!.Images));
    }

    [Fact]
    public void AResumeKeepsTheLinesUpToItsStartStepAndAddsTheDistributedFields()
    {
        using (var log = MetricsLog.Open(File(), startStep: 0))
            for (int s = 1; s <= 5; s++) log.OnStep(Step(s));
        using (var log = MetricsLog.Open(File(), startStep: 3, workers: 2, attempt: 1))
            log.Write(Step(4) with { ExchangeSeconds = 0.125, AllReduceSeconds = 0.0625 });
        var lines = Lines();
        Assert.Equal([1L, 2L, 3L, 4L], lines.Select(l => l.GetProperty("step").GetInt64()));
        Assert.Equal(2.0 / 3, lines[2].GetProperty("loss").GetDouble());                       // kept as written
        Assert.Equal((0.125, 0.0625, 2, 1), (lines[3].GetProperty("exchange_s").GetDouble(), lines[3].GetProperty("all_reduce_s").GetDouble(),
                                             lines[3].GetProperty("workers").GetInt32(), lines[3].GetProperty("attempt").GetInt32()));
        Assert.Null(MetricsLog.LastEvaluation(File()));

        using (MetricsLog.Open(File(), startStep: 0)) { }                                        // a fresh run starts an empty file
        Assert.Empty(System.IO.File.ReadAllLines(File()));
    }

    [Fact]
    public void ALineWithoutAStepIsNamedByFileAndLine()
    {
        System.IO.File.WriteAllLines(File(), ["{\"step\": 1}", "{\"loss\": 2}"]);
        var e = Assert.Throws<InvalidDataException>(() => MetricsLog.Open(File(), startStep: 1));
        Assert.Contains($"{File()}: line 2", e.Message);
    }
}
