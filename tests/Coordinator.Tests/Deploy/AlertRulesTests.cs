using System.Diagnostics;
using System.Text.RegularExpressions;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Protocol.Telemetry;
using YamlDotNet.Serialization;

namespace Jetpack.Coordinator.Tests.Deploy;

/// <summary>
/// Issue 20: the alert rules (deploy/prometheus/jetpack-alerts.yml, and the same groups as a
/// PrometheusRule in deploy/k8s/monitoring) pass Debian's promtool, use only Jetpack's metric names,
/// and "worker lost" fires in a real Prometheus scraping a real coordinator.
/// </summary>
[Collection(InProcessCoordinators.Name)]
public sealed partial class AlertRulesTests : IDisposable
{
    const string Promtool = "/usr/bin/promtool";
    static string PlainRules => RepoPaths.File("deploy", "prometheus", "jetpack-alerts.yml");
    static string OperatorRules => RepoPaths.File("deploy", "k8s", "monitoring", "jetpack-alerts-prometheusrule.yaml");
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    static object? Yaml(string path) => new DeserializerBuilder().Build().Deserialize<object>(File.ReadAllText(path));
    static string Text(object? tree) => new SerializerBuilder().Build().Serialize(tree);

    static (int Code, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), $"{file} did not finish within 60 s");
        return (p.ExitCode, output + err.Result);
    }

    [GeneratedRegex(@"jetpack_[a-z0-9_]+")]
    private static partial Regex MetricToken();

    [Fact]
    public void PromtoolAcceptsBothRuleFilesWhichHoldTheSameGroupsOfKnownMetrics()
    {
        Assert.True(File.Exists(Promtool), $"{Promtool} missing: install Debian's prometheus package (scripts/setup.sh)");
        var plain = Yaml(PlainRules) as Dictionary<object, object>;
        var rule = Yaml(OperatorRules) as Dictionary<object, object>;
        Assert.Equal("PrometheusRule", Manifest.Str(rule, "kind"));
        var spec = Manifest.Map(rule, "spec");
        Assert.Equal(Text(plain!["groups"]), Text(spec!["groups"]));

        // promtool on the plain file, and on the PrometheusRule's spec as a rules file of its own
        string extracted = dir.File("from-prometheusrule.yml");
        File.WriteAllText(extracted, Text(new Dictionary<string, object> { ["groups"] = spec["groups"] }));
        foreach (var file in new[] { PlainRules, extracted })
        {
            var (code, output) = Run(Promtool, "check", "rules", file);
            Assert.True(code == 0, $"promtool check rules {file}: {output}");
            Assert.Contains("SUCCESS: 7 rules found", output);
        }

        var alerts = Manifest.List(Manifest.List(plain, "groups").Single(), "rules").Select(r => Manifest.Str(r, "alert")).ToList();
        Assert.Equal(["JetpackWorkerLost", "JetpackJobStalled", "JetpackLossNotFinite", "JetpackLossDiverging", "JetpackDataStall",
                      "JetpackRecoveriesExhausted", "JetpackRecoveringRepeatedly"], alerts);
        var known = typeof(MetricNames).GetFields().Where(f => f.IsLiteral && f.FieldType == typeof(string)).Select(f => (string)f.GetRawConstantValue()!)
            .SelectMany(n => new[] { n, MetricNames.Exported(n), n + "_bucket" }).ToHashSet();
        var unknown = MetricToken().Matches(File.ReadAllText(PlainRules)).Select(m => m.Value).Where(m => !known.Contains(m)).Distinct().ToList();
        Assert.True(unknown.Count == 0, $"rules use metrics MetricNames.cs does not define: {string.Join(", ", unknown)}");
    }

    [Fact]
    [Trait("Category", "Timing")]   // seconds-scale timers (heartbeat 1 s, for: 1s): scripts/test.sh runs it alone, after the other assemblies
    public async Task WorkerLostFiresInARealPrometheusWhenARegisteredWorkerStopsHeartbeating()
    {
        // the shipped rules with every `for:` shortened to 1 s (a test-only copy); everything else as shipped
        string rules = dir.File("jetpack-alerts-test.yml");
        File.WriteAllText(rules, Regex.Replace(File.ReadAllText(PlainRules), @"(?m)^(\s+for:) \S+$", "$1 1s"));
        await using var coordinator = await TestCoordinator.StartAsync(dir.File("data"), new FakeRecycler(dir.Path), new FakeTrainingDriver(),
                                                                      heartbeatTimeout: TimeSpan.FromSeconds(1));
        using var prometheus = new PrometheusServer(rules, coordinator.Metrics);
        await prometheus.WaitReady();
        await coordinator.RegisterWorker("w-lost");                           // registers once, never heartbeats
        var clock = Stopwatch.StartNew();
        string firing = "ALERTS{alertname=\"JetpackWorkerLost\",alertstate=\"firing\"}";
        var alert = await Await.Until(() => prometheus.Query(firing), r => r.Count > 0, $"{firing} ({prometheus.Log})", TimeSpan.FromSeconds(60));
        Assert.Equal("w-lost", Assert.Single(alert).Labels[MetricNames.Labels.Worker]);
        Assert.Equal("critical", alert[0].Labels["severity"]);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"fired after {clock.Elapsed.TotalSeconds:F1} s");
        // nothing else fires on an idle coordinator
        var others = await prometheus.Query("ALERTS{alertname!=\"JetpackWorkerLost\"}");
        Assert.Empty(others);
    }
}
