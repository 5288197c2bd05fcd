using System.Diagnostics;
using Jetpack.Coordinator.Jobs;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Application.Runs;

namespace Jetpack.Coordinator.Tests.Jobs;

/// <summary>Issue 12, the spec reader: each hostile input found by the new user is a named RunSpecException, fast and small.</summary>
public sealed class HostileSpecTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    /// <summary>Parses and validates under a wall-clock and allocation bound; returns the error.</summary>
    static RunSpecException Refused(string text, string format = "yaml", long maxBytes = 64L << 20)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<RunSpecException>(() => JobSpecValidator.Validate(JobSpecReader.Parse(text, format, "hostile.yaml"), "hostile.yaml"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"refusing took {clock.Elapsed.TotalSeconds:F1} s: {e.Message}");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < maxBytes, $"refusing allocated {allocated:N0} bytes: {e.Message}");
        Assert.StartsWith("hostile.yaml: ", e.Message);
        return e;
    }

    [Fact]
    public void ACyclicAliasIsRefusedNamingTheFieldAndLine()
    {
        var e = Refused("name: cyc\nx: &a [*a]\n");
        Assert.Equal("x", e.Field);
        Assert.Contains("line 2", e.Message);
        Assert.Contains("anchors (&a)", e.Message);
    }

    [Fact]
    public void AnAliasIsRefusedEvenWithoutAnAnchorInSight() =>
        Assert.Contains("aliases (*nowhere) are not allowed", Refused("name: a\nx: *nowhere\n").Message);

    [Fact]
    public void AnAliasBombOfAFewHundredBytesCostsNothing()
    {
        // "billion laughs": 9 levels of 9 references each expand to 9⁹ strings (it took 1.28 GB and 7.7 s before)
        var bomb = new System.Text.StringBuilder("name: bomb\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (char c = 'b'; c <= 'i'; c++)
        {
            char p = (char)(c - 1);
            bomb.Append($"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n");
        }
        Assert.InRange(bomb.Length, 300, 450);
        var e = Refused(bomb.ToString(), maxBytes: 4L << 20);
        Assert.Equal("a", e.Field);
        Assert.Contains("anchors", e.Message);
    }

    [Theory]
    [InlineData(100_000)]
    [InlineData(65)]
    public void DeepFlowNestingStopsAtTheLimit(int depth)
    {
        var e = Refused("name: deep\nx: " + new string('[', depth) + "\n");
        Assert.Contains($"nested deeper than {JobSpecReader.MaxDepth} levels", e.Message);
        Assert.Contains("line 2", e.Message);
    }

    [Fact]
    public void DeepBlockNestingStopsAtTheLimit()
    {
        var yaml = new System.Text.StringBuilder("name: deep\n");
        for (int i = 0; i < 200; i++) yaml.Append(new string(' ', i)).Append("k:\n");
        Assert.Contains("nested deeper than 64", Refused(yaml.ToString()).Message);
    }

    [Fact]
    public void NestingAtTheLimitIsStillRead()
    {
        // root mapping (1) + 63 sequences = 64 levels: the reader accepts it, the deserializer names the field
        var e = Refused("name: deep\nx: " + new string('[', 63) + new string(']', 63) + "\n");
        Assert.Equal("x", e.Field);
        Assert.Contains("unknown field", e.Message);
    }

    [Fact]
    public void DeepJsonIsRefused()
    {
        var e = Refused("{\"name\": " + new string('[', 100_000), "json");
        Assert.Contains($"nested deeper than {JobSpecReader.MaxDepth} levels", e.Message);
    }

    [Fact]
    public void AnOversizeSpecIsRefusedBeforeParsing()
    {
        string huge = "name: big\n#" + new string('x', JobSpecReader.MaxBytes) + "\n";
        var e = Refused(huge);
        Assert.Contains("larger than the limit of a spec (1,048,576 bytes)", e.Message);
        string file = dir.File("big.yaml");
        File.WriteAllText(file, huge);
        Assert.Contains("more than 1,048,576 bytes", Assert.Throws<RunSpecException>(() => JobSpecReader.Load(file)).Message);
    }

    [Fact]
    public void DuplicateKeysNameTheField()
    {
        var e = Refused("name: a\nrecipe:\n  steps: 5\n  steps: 6\n");
        Assert.Equal("recipe.steps", e.Field);
        Assert.Contains("line 4: given twice", e.Message);
    }

    [Fact]
    public void AComplexKeyIsRefused() => Assert.Contains("keys must be plain names", Refused("? [a, b]\n: c\n").Message);

    [Fact]
    public void ANumberBeyondDoubleIsAWrongTypeNotACrash() =>
        Assert.Equal("recipe.learning_rate", Refused("name: a\nrecipe:\n  learning_rate: 1e999\n").Field);

    [Fact]
    public void MoreThanOneDocumentIsRefused() => Assert.Contains("exactly one YAML document", Refused("name: a\n---\nname: b\n").Message);

    [Theory]
    [InlineData("workers: many", "workers", "expected an integer")]
    [InlineData("recipe:\n  steps: lots", "recipe.steps", "expected an integer")]
    [InlineData("recipe:\n  learning_rate: fast", "recipe.learning_rate", "expected a number")]
    [InlineData("deterministic: perhaps", "deterministic", "expected true or false")]
    [InlineData("name: [a]", "name", "expected a string")]
    [InlineData("data:\n  max_per_class: some", "data.max_per_class", "expected an integer")]
    [InlineData("data: 5", "data", "expected a mapping of fields")]
    [InlineData("recycle: [1]", "recycle", "expected a mapping of fields")]
    public void AWrongTypeAlwaysNamesTheExpectedType(string line, string field, string expected)
    {
        var e = Refused(line + "\n");
        Assert.Equal(field, e.Field);
        Assert.Contains($"has the wrong type ({expected}", e.Message);
    }
}
