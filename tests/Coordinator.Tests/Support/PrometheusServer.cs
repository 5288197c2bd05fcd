using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;

namespace Jetpack.Coordinator.Tests.Support;

/// <summary>
/// A real Debian Prometheus on loopback (random port, temp config and TSDB directory) that scrapes
/// the given targets every second and, when given a rules file, evaluates its rules every second.
/// Needs the apt package prometheus (scripts/setup.sh installs it).
/// </summary>
public sealed class PrometheusServer : IDisposable
{
    const string Binary = "/usr/bin/prometheus";
    readonly Process process;
    readonly TempDir dir = new();
    readonly HttpClient http = new() { Timeout = TimeSpan.FromSeconds(10) };
    readonly System.Text.StringBuilder log = new();
    public Uri Address { get; }

    public PrometheusServer(params Uri[] metricsEndpoints) : this(null, metricsEndpoints) { }

    /// <param name="rulesFile">a rules file (groups of alerting/recording rules) evaluated every second, or null</param>
    public PrometheusServer(string? rulesFile, params Uri[] metricsEndpoints)
    {
        Assert.True(File.Exists(Binary), $"{Binary} missing: run scripts/setup.sh (apt package prometheus)");
        string targets = string.Join(", ", metricsEndpoints.Select(u => $"'{u.Host}:{u.Port}'"));
        string rules = rulesFile is null ? "" : $"rule_files: ['{rulesFile}']\n";
        File.WriteAllText(dir.File("prometheus.yml"), rules + $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 900ms
              evaluation_interval: 1s
            scrape_configs:
              - job_name: jetpack-coordinator
                metrics_path: /metrics
                static_configs:
                  - targets: [{targets}]
            """);
        int port = FreePort.Next();
        Address = new Uri($"http://127.0.0.1:{port}");
        var psi = new ProcessStartInfo(Binary) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir.Path };
        foreach (var a in new[] { $"--config.file={dir.File("prometheus.yml")}", $"--storage.tsdb.path={dir.File("tsdb")}", $"--web.listen-address=127.0.0.1:{port}" })
            psi.ArgumentList.Add(a);
        process = Process.Start(psi)!;
        process.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Log { get { lock (log) return log.ToString(); } }

    public async Task WaitReady()
    {
        await Await.Until(async () =>
        {
            if (process.HasExited) throw new InvalidOperationException($"prometheus exited with {process.ExitCode}: {Log}");
            try { return (await http.GetAsync(new Uri(Address, "/-/ready"))).IsSuccessStatusCode; }
            catch (HttpRequestException) { return false; }
        }, ready => ready, $"prometheus at {Address} to be ready");
    }

    /// <summary>An instant query through the HTTP API (/api/v1/query): (labels, value) per series.</summary>
    public async Task<List<(Dictionary<string, string> Labels, double Value)>> Query(string promql)
    {
        using var doc = await http.GetFromJsonAsync<JsonDocument>(new Uri(Address, "/api/v1/query?query=" + Uri.EscapeDataString(promql)));
        var root = doc!.RootElement;
        Assert.Equal("success", root.GetProperty("status").GetString());
        return root.GetProperty("data").GetProperty("result").EnumerateArray().Select(r => (
            r.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!),
            double.Parse(r.GetProperty("value")[1].GetString()!, System.Globalization.CultureInfo.InvariantCulture))).ToList();
    }

    public void Dispose()
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        process.WaitForExit(5000);
        process.Dispose();
        http.Dispose();
        dir.Dispose();
    }
}
