using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using Jetpack.Protocol.Telemetry;

namespace Jetpack.Coordinator.Tests.Deploy;

/// <summary>deploy/grafana/jetpack-dashboard.json queries exactly the metrics of MetricNames.cs.</summary>
public partial class GrafanaDashboardTests
{
    static string DashboardPath() => Support.RepoPaths.File("deploy", "grafana", "jetpack-dashboard.json");

    static HashSet<string> Names() =>
        typeof(MetricNames).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(string) && ((string)f.GetRawConstantValue()!).StartsWith("jetpack_"))
            .Select(f => (string)f.GetRawConstantValue()!).ToHashSet();

    [GeneratedRegex(@"jetpack_[a-z0-9_]+")]
    private static partial Regex MetricToken();

    [Fact]
    public void EveryQueryUsesAKnownMetricAndEveryMetricHasAPanel()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(DashboardPath()));
        var exprs = doc.RootElement.GetProperty("panels").EnumerateArray()
            .Where(p => p.TryGetProperty("targets", out _))
            .SelectMany(p => p.GetProperty("targets").EnumerateArray().Select(t => (Panel: p.GetProperty("title").GetString(), Expr: t.GetProperty("expr").GetString()!)))
            .ToList();
        var names = Names();
        var used = new HashSet<string>();
        foreach (var (panel, expr) in exprs)
            foreach (Match m in MetricToken().Matches(expr))
            {
                // The exporter's suffixes: _total on counters, _bucket/_sum/_count on histograms.
                string name = Regex.Replace(m.Value, "_(total|bucket|sum|count)$", "");
                Assert.True(names.Contains(name), $"panel '{panel}': {m.Value} is not a metric of MetricNames.cs");
                used.Add(name);
            }
        Assert.Empty(names.Except(used));
        Assert.Contains(doc.RootElement.GetProperty("templating").GetProperty("list").EnumerateArray(), v => v.GetProperty("name").GetString() == "job");
    }
}
