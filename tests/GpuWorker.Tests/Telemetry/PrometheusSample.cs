using System.Globalization;

namespace Jetpack.Tests.Telemetry;

/// <summary>One sample of a Prometheus text exposition (a worker's or the coordinator's /metrics), found by its
/// metric name and label values; linked into the test projects that scrape a real endpoint.</summary>
public static class PrometheusSample
{
    /// <summary>The value of the one sample of <paramref name="name"/> whose labels include every one of
    /// <paramref name="labels"/> (e.g. <c>("rank", "1")</c>); fails naming what it looked for, with the text.</summary>
    public static double Value(string text, string name, params (string Label, string Value)[] labels)
    {
        var matches = text.Split('\n').Where(l => l.StartsWith(name + "{", StringComparison.Ordinal)
                                                  && labels.All(x => l.Contains($"{x.Label}=\"{x.Value}\"", StringComparison.Ordinal))).ToList();
        if (matches.Count != 1)
            throw new Xunit.Sdk.XunitException($"{matches.Count} samples of {name}{{{string.Join(",", labels.Select(x => $"{x.Label}=\"{x.Value}\""))}}} (want 1) in:\n{text}");
        return double.Parse(matches[0][(matches[0].LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }
}
