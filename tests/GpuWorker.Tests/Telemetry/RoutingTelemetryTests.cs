using System.Diagnostics.Metrics;
using System.Text.Json;
using TorchSharp;
using Jetpack.Application.Training;
using Jetpack.GpuWorker.Telemetry;
using Jetpack.Model.Moe;
using Jetpack.Protocol.Telemetry;

namespace Jetpack.GpuWorker.Tests.Telemetry;

/// <summary>Routing telemetry at 1,000+ experts (issue 19): bounded Prometheus series, the busiest expert ids in metrics.jsonl.</summary>
public class RoutingTelemetryTests
{
    /// <summary>Routing statistics of one forward of a layer with <paramref name="experts"/> experts × 2 slots and skewed combine weights.</summary>
    static RoutingStatistics Forward(int layer, int experts, ulong seed)
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(seed);
        var logits = torch.randn([2, 10, experts * 2], generator: gen);
        logits[.., .., torch.TensorIndex.Slice(0, 2)] += 3;                                    // expert 0 is the busiest
        return RoutingStatistics.Of(layer, logits.softmax(1), logits.softmax(-1), slotsPerExpert: 2);
    }

    /// <summary>The series Prometheus would show for the worker meter: one per (instrument, label set), a histogram
    /// bucket count + 3 (the +Inf bucket, _sum, _count); and every label key used.</summary>
    static (int Series, HashSet<string> Labels) Record(int experts)
    {
        var tagSets = new Dictionary<string, HashSet<string>>();
        var labels = new HashSet<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Meter.Name == MetricNames.WorkerMeter) l.EnableMeasurementEvents(instrument); };
        listener.SetMeasurementEventCallback<double>((instrument, _, tags, _) =>
        {
            foreach (var t in tags) labels.Add(t.Key);
            var set = tagSets.TryGetValue(instrument.Name, out var s) ? s : tagSets[instrument.Name] = [];
            set.Add(string.Join(',', tags.ToArray().Select(t => $"{t.Key}={t.Value}")));
        });
        listener.Start();
        using var metrics = new WorkerMetrics(() => 0);
        for (int step = 0; step < 3; step++)
            for (int layer = 0; layer < 6; layer++)
                metrics.RecordRouting(Jetpack.Protocol.Control.RunId.Of("job-a", 1), Forward(layer, experts, (ulong)(step * 10 + layer)));
        int series = tagSets.Sum(kv => kv.Value.Count * (kv.Key == MetricNames.ExpertLoadRatio ? MetricNames.ExpertLoadBuckets.Count + 3 : 1));
        return (series, labels);
    }

    [Fact]
    public void TheSeriesCountStaysBoundedAsExpertsGrow()
    {
        var small = Record(8);
        var large = Record(1176);
        var larger = Record(4704);
        Assert.Equal(small.Series, large.Series);
        Assert.Equal(small.Series, larger.Series);
        Assert.Equal(6 * (5 + MetricNames.ExpertLoadBuckets.Count + 3), large.Series);        // 6 layers × (5 gauges + one histogram)
        Assert.Equal(new HashSet<string> { MetricNames.Labels.Job, MetricNames.Labels.Attempt, MetricNames.Labels.Rank, MetricNames.Labels.Layer }, large.Labels);
    }

    [Fact]
    public void MetricsJsonlNamesTheBusiestExpertsPerLayer()
    {
        var stats = Forward(3, 1176, 7);
        Assert.Equal(1176, stats.ExpertLoad.Count);
        Assert.Equal(1.0, stats.ExpertLoad.Sum(), 6);
        Assert.Equal(0, stats.TopExperts(1)[0].Expert);
        var path = Path.Combine(Path.GetTempPath(), $"jetpack-routing-{Guid.NewGuid():N}.jsonl");
        try
        {
            using (var log = MetricsLog.Open(path, 0))
                log.Write(new StepReport(1, 2.0, 1e-3, 0.5, 8, 0.1, Routing: [RoutingSummary.Of(stats)]));
            using var line = JsonDocument.Parse(File.ReadLines(path).Single());
            var layer = line.RootElement.GetProperty("routing")[0];
            Assert.Equal((3, 1176), (layer.GetProperty("layer").GetInt32(), layer.GetProperty("experts").GetInt32()));
            var top = layer.GetProperty("top_experts");
            Assert.Equal(RoutingSummary.TopExperts, top.GetArrayLength());                         // bounded at any E
            Assert.Equal(0, top[0][0].GetInt32());
            Assert.Equal(stats.MaxLoadShare, top[0][1].GetDouble(), 12);
            Assert.True(top[0][1].GetDouble() >= top[7][1].GetDouble());
            Assert.InRange(layer.GetProperty("load_balance").GetDouble(), 0.5, 1.0);
        }
        finally { File.Delete(path); }
    }

    /// <summary>Rank 0's Progress carries the summary (issue 19) and the driver's side reads back the same numbers; its size does not grow with E.</summary>
    [Fact]
    public void ProgressCarriesABoundedRoutingSummaryBothWays()
    {
        int Size(int experts)
        {
            var report = new StepReport(1, 2.0, 1e-3, 0.5, 8, 0.1, Routing: [RoutingSummary.Of(Forward(3, experts, 7)), RoutingSummary.Of(Forward(4, experts, 8))]);
            var p = report.ToProgress("job", 0);
            Assert.Empty(report.ToProgress("job", 1).Routing);                                 // one copy: rank 0's
            var back = p.ToStepReport(8).Routing!;
            Assert.Equal(report.Routing!.Select(s => (s.Layer, s.Experts, s.MaxLoadShare, s.LoadBalance, s.CombineEntropy)),
                         back.Select(s => (s.Layer, s.Experts, s.MaxLoadShare, s.LoadBalance, s.CombineEntropy)));
            Assert.Equal(report.Routing![0].Top, back[0].Top);
            return p.CalculateSize();
        }
        int small = Size(24), large = Size(1176);
        Assert.True(large <= small + 32, $"Progress grew from {small} to {large} bytes between 24 and 1176 experts");   // 2-byte varints of ids ≥ 128 only

        var bad = new StepReport(1, 2.0, 1e-3, 0.5, 8, 0.1, Routing: [RoutingSummary.Of(Forward(3, 24, 7))]).ToProgress("job", 0);
        bad.Routing[0].TopShares.RemoveAt(0);
        var e = Assert.Throws<InvalidDataException>(() => bad.ToStepReport(8));
        Assert.Contains("routing layer 3", e.Message);
    }
}
