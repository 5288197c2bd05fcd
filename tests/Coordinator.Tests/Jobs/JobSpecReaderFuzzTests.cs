using System.Diagnostics;
using System.Text;
using Jetpack.Coordinator.Jobs;
using Jetpack.Application.Runs;

namespace Jetpack.Coordinator.Tests.Jobs;

/// <summary>
/// Issue 12: the spec reader meets network input, so whatever it is given, the only failure is a
/// <see cref="RunSpecException"/> (which the JobService maps to InvalidArgument). Seeded, so a failure
/// reproduces: each case prints its seed and index.
/// </summary>
public sealed class JobSpecReaderFuzzTests
{
    const int Seed = 12_2026;

    const string YamlSpec = """
        name: fuzz-a
        model: v_jetmoe_fmnist
        workers: 2
        recycle: { from: /nope/pred.safetensors, method: importance-l2, profile_fashion_mnist: true, profile_classes: "0-4" }
        data:
          dataset: fashion-mnist
          classes: "5-9"
          max_per_class: 100
        recipe:
          steps: 50
          global_batch: 16
          learning_rate: 0.001
        deterministic: true
        out: runs/a
        """;

    const string JsonSpec = """
        { "name": "fuzz-a", "model": "v_jetmoe_fmnist", "workers": 2,
          "recycle": { "from": "/nope/pred.safetensors", "method": "importance-l2", "profile_fashion_mnist": true },
          "data": { "dataset": "cifar100", "root": "/nope", "classes": "0-99" },
          "recipe": { "steps": 50, "global_batch": 16 }, "checkpoint_every": 25 }
        """;

    // YAML and JSON punctuation, scalars that look like other types, and text that is not ASCII.
    static readonly string[] Pieces =
    [
        "[", "]", "{", "}", ":", ": ", ",", "-", "- ", "&a ", "*a", "&b [*a, *a]", "!!str ", "!!binary ", "? ", "|", ">", "#", "'", "\"",
        "\n", "\n  ", "\t", "---\n", "...\n", "%YAML 1.2\n", "<<: *a\n", "1e999", "-0", "0x10", "9223372036854775808", "NaN", ".inf",
        "null", "~", "true", "yes", "\u00e9", "\U0001F600", "\ud800", "\0", "\\u0000", "name", "recipe", "steps", "classes", "0-2147483647",
    ];

    [Fact]
    public void OnlyRunSpecExceptionsComeOut()
    {
        var rng = new Random(Seed);
        var clock = Stopwatch.StartNew();
        int cases = 0, refused = 0;
        for (; cases < 1000; cases++)
        {
            bool json = rng.Next(3) == 0;
            string text = (cases % 5) switch
            {
                0 => Nesting(rng),
                1 => Aliases(rng),
                _ => Mutate(json ? JsonSpec : YamlSpec, rng),
            };
            string format = cases % 5 < 2 ? (rng.Next(2) == 0 ? "yaml" : "json") : json ? "json" : "yaml";
            try
            {
                JobSpecValidator.Validate(JobSpecReader.Parse(text, format, "fuzz"), "fuzz");
            }
            catch (RunSpecException)
            {
                refused++;
            }
            catch (Exception e)
            {
                Assert.Fail($"case {cases} (seed {Seed}, {format}) threw {e}\n--- input ---\n{Shorten(text)}");
            }
        }
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"{cases} cases took {clock.Elapsed.TotalSeconds:F1} s");
        Assert.InRange(refused, cases / 2, cases);  // the mutations mostly break the spec: the test exercises the error paths
    }

    /// <summary>1–8 random edits: insert a piece, delete or duplicate a span, replace a character.</summary>
    static string Mutate(string text, Random rng)
    {
        var s = new StringBuilder(text);
        for (int edits = rng.Next(1, 9); edits > 0; edits--)
        {
            int at = rng.Next(s.Length + 1);
            switch (rng.Next(4))
            {
                case 0: s.Insert(at, Pieces[rng.Next(Pieces.Length)]); break;
                case 1 when at < s.Length: s.Remove(at, Math.Min(rng.Next(1, 20), s.Length - at)); break;
                case 2 when at < s.Length:
                    string span = s.ToString(at, Math.Min(rng.Next(1, 40), s.Length - at));
                    s.Insert(rng.Next(s.Length + 1), span);
                    break;
                case 3 when at < s.Length: s[at] = (char)rng.Next(1, 0x2500); break;
            }
        }
        return s.ToString();
    }

    /// <summary>Flow or block nesting around the spec's depth limit, sometimes far beyond, sometimes unclosed.</summary>
    static string Nesting(Random rng)
    {
        int depth = rng.Next(4) == 0 ? rng.Next(1_000, 50_000) : rng.Next(JobSpecReader.MaxDepth - 3, JobSpecReader.MaxDepth + 4);
        var s = new StringBuilder("name: deep\nx: ");
        switch (rng.Next(3))
        {
            case 0:
                for (int i = 0; i < depth; i++) s.Append(rng.Next(2) == 0 ? "[" : "{k: ");
                break;
            case 1:
                s.Append('\n');
                for (int i = 0; i < Math.Min(depth, 3_000); i++) s.Append(' ', i + 1).Append(rng.Next(2) == 0 ? "k:\n" : "-\n");
                break;
            default:
                s.Clear().Append(new string('[', depth)).Append(new string(']', rng.Next(depth + 1)));
                break;
        }
        return s.ToString();
    }

    /// <summary>Anchors, aliases, merge keys and cycles in random places.</summary>
    static string Aliases(Random rng)
    {
        var s = new StringBuilder("name: alias\n");
        int levels = rng.Next(1, 12);
        s.Append("a0: &a0 [\"lol\", \"lol\"]\n");
        for (int i = 1; i < levels; i++)
            s.Append($"a{i}: &a{i} [{string.Join(",", Enumerable.Repeat($"*a{i - 1}", rng.Next(1, 10)))}]\n");
        if (rng.Next(2) == 0) s.Append("c: &c [*c]\n");
        if (rng.Next(2) == 0) s.Append("m:\n  <<: *a0\n");
        return s.ToString();
    }

    static string Shorten(string text) => text.Length <= 2_000 ? text : text[..2_000] + $"… ({text.Length:N0} characters)";
}
