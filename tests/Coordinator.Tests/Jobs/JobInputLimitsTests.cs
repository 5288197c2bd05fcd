using Jetpack.Application.Runs;
using System.Diagnostics;
using Jetpack.Cli.Commands;
using Jetpack.Coordinator.Jobs;
using Jetpack.Coordinator.Tests.Support;

namespace Jetpack.Coordinator.Tests.Jobs;

/// <summary>Issue 12: job ids, output paths and class lists are checked where they enter, naming the field.</summary>
public sealed class JobInputLimitsTests : IDisposable
{
    readonly TempDir dir = new();
    readonly string pred;

    public JobInputLimitsTests() => pred = JobSpecs.Checkpoint(dir, "pred.safetensors", "pred");

    public void Dispose() => dir.Dispose();

    RunSpecException Invalid(string data)
    {
        string yaml = JobSpecs.Yaml("limits", pred) + "\n" + data;
        return Assert.Throws<RunSpecException>(() => JobSpecValidator.Validate(JobSpecReader.Parse(yaml, "yaml", "job.yaml"), "job.yaml"));
    }

    [Theory]
    [InlineData("../../x")]
    [InlineData("a/b")]
    [InlineData("abc\n")]
    [InlineData("Upper")]
    [InlineData("-a")]
    [InlineData("")]
    public void HostileJobIdsAreNotIds(string id) => Assert.False(JobSpecValidator.IsJobId(id), id);

    [Fact]
    public void ADirectoryOrAnEmptyFileIsNotACheckpointAndTheErrorSaysSo()
    {
        string folder = dir.File("folder.safetensors"), empty = dir.File("empty.safetensors");
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(empty, []);
        RunSpecException Recycling(string from) => Assert.Throws<RunSpecException>(() => JobSpecValidator.Validate(
            JobSpecReader.Parse(JobSpecs.Yaml("limits", from), "yaml", "job.yaml"), "job.yaml"));
        var e = Recycling(folder);
        Assert.Equal("recycle.from", e.Field);
        Assert.Contains("is a directory", e.Message);
        Assert.Contains("is empty (0 bytes)", Recycling(empty).Message);
        Assert.Contains("not found", Recycling(dir.File("missing.safetensors")).Message);
    }

    [Fact]
    public void AHugeIdIsRefusedAndQuotedShort()
    {
        string id = new('a', 5000);
        Assert.False(JobSpecValidator.IsJobId(id));
        string problem = JobSpecValidator.JobIdProblem(id);
        Assert.Contains("(5,000 characters)", problem);
        Assert.True(problem.Length < 300, problem);
        Assert.True(JobSpecValidator.IsJobId("fmnist-a") && JobSpecValidator.IsJobId(new string('a', 63)));
        Assert.False(JobSpecValidator.IsJobId(new string('a', 64)));
    }

    [Fact]
    public void OutputsStayInsideTheDataDirectory()
    {
        string data = dir.File("data");
        Directory.CreateDirectory(data);
        Assert.Equal(Path.Combine(data, "jobs", "job-a"), JobOutputs.Resolve(null, "job-a", data, "job.yaml"));
        Assert.Equal(Path.Combine(data, "runs", "a"), JobOutputs.Resolve("runs/a", "job-a", data, "job.yaml"));
        Assert.Equal(Path.Combine(data, "runs", "a"), JobOutputs.Resolve(Path.Combine(data, "runs", "a"), "job-a", data, "job.yaml"));
        foreach (string escape in new[] { "../../x", "/etc/cron.d", "runs/../../elsewhere", data + "-sibling/x" })
        {
            var e = Assert.Throws<RunSpecException>(() => JobOutputs.Resolve(escape, "job-a", data, "job.yaml"));
            Assert.Equal("out", e.Field);
            Assert.Contains("outside the coordinator's data directory", e.Message);
        }
        Assert.Equal("job_id", Assert.Throws<RunSpecException>(() => JobOutputs.Resolve(null, "../../x", data, "job.yaml")).Field);
    }

    [Fact]
    public void ALinkInsideTheDataDirectoryCannotLeadOut()
    {
        string data = dir.File("data"), elsewhere = dir.File("elsewhere");
        Directory.CreateDirectory(data);
        Directory.CreateDirectory(elsewhere);
        Directory.CreateSymbolicLink(Path.Combine(data, "link"), elsewhere);
        var e = Assert.Throws<RunSpecException>(() => JobOutputs.Resolve("link/run", "job-a", data, "job.yaml"));
        Assert.Equal("out", e.Field);
    }

    [Theory]
    [InlineData("0-2147483647", "beyond the dataset's 10 classes")]
    [InlineData("banana", "'banana' is not a class")]
    [InlineData("0-10", "beyond the dataset's 10 classes (0-9)")]
    [InlineData("1--2", "is not a class")]
    [InlineData(",", "names no class")]
    public void DataClassesAreCheckedAtSubmitNamingTheField(string classes, string problem)
    {
        var clock = Stopwatch.StartNew();
        var e = Invalid($"data:\n  classes: \"{classes}\"\n");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"took {clock.Elapsed}");
        Assert.Equal("data.classes", e.Field);
        Assert.Contains(problem, e.Message);
        Assert.DoesNotContain("--profile-classes", e.Message);
    }

    [Fact]
    public void TheBoundIsTheDatasetsClassCount()
    {
        var root = dir.File("cifar");
        // a CIFAR model for CIFAR-100 (the fit check refuses 3-channel CIFAR for the 1-channel Fashion-MNIST model)
        var spec = JobSpecReader.Parse(JobSpecs.Yaml("limits", pred).Replace("model: v_jetmoe_fmnist", "model: v_jetmoe_t") +
                                       $"\ndata:\n  dataset: cifar100\n  root: {root}\n  classes: \"0-99\"\n  image_size: 224\n", "yaml", "job.yaml");
        JobSpecValidator.Validate(spec, "job.yaml");
        Assert.Contains("100 classes", Invalid($"data:\n  dataset: cifar100\n  root: {root}\n  classes: \"0-100\"\n").Message);
        Assert.Equal("recycle.profile_classes", Assert.Throws<RunSpecException>(() => JobSpecValidator.Validate(
            JobSpecReader.Parse(JobSpecs.Yaml("limits", pred).Replace("  method: random", "  method: random\n  profile_classes: 0-99999"), "yaml", "job.yaml"), "job.yaml")).Field);
    }

    [Fact]
    public void TheClassParserNamesTheFieldItWasGiven()
    {
        Assert.StartsWith("data.classes: ", Assert.Throws<ArgumentException>(() => ClassList.Parse("x", "data.classes", 10)).Message);
        Assert.StartsWith("--profile-classes: ", Assert.Throws<ArgumentException>(() => ClassList.Parse("0-2147483647", "--profile-classes")).Message);
        Assert.Equal([5, 6, 7, 8, 9], ClassList.Parse("5-9", "data.classes", 10)!);
        Assert.Equal([0, 2, 5], ClassList.Parse("5, 0,2", "data.classes", 10)!);
    }
}
