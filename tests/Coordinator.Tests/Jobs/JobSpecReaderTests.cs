using Jetpack.Coordinator.Jobs;
using Jetpack.Coordinator.Tests.Support;
using Jetpack.Application.Runs;

namespace Jetpack.Coordinator.Tests.Jobs;

public sealed class JobSpecReaderTests : IDisposable
{
    readonly TempDir dir = new();
    readonly string pred;

    public JobSpecReaderTests() => pred = JobSpecs.Checkpoint(dir, "pred.safetensors", "pred");

    public void Dispose() => dir.Dispose();

    string Yaml(string extra = "", string recipe = "  steps: 50\n  global_batch: 16\n") =>
        $"name: fmnist-a\nmodel: v_jetmoe_fmnist\nworkers: 2\nrecycle:\n  from: {pred}\n  method: importance-l2\n  profile_fashion_mnist: true\n  profile_count: 256\nrecipe:\n{recipe}{extra}";

    static RunSpecException Invalid(string text, string format = "yaml")
    {
        var e = Assert.Throws<RunSpecException>(() =>
        {
            var spec = JobSpecReader.Parse(text, format, "job.yaml");
            JobSpecValidator.Validate(spec, "job.yaml");
        });
        Assert.StartsWith("job.yaml: ", e.Message);
        return e;
    }

    [Fact]
    public void YamlAndJsonReadToTheSameSpec()
    {
        var yaml = JobSpecReader.Parse(Yaml("checkpoint_every: 25\n"), "yaml", "a.yaml");
        string json = $$"""
            { "name": "fmnist-a", "model": "v_jetmoe_fmnist", "workers": 2,
              "recycle": { "from": "{{pred}}", "method": "importance-l2", "profile_fashion_mnist": true, "profile_count": 256 },
              "recipe": { "steps": 50, "global_batch": 16 }, "checkpoint_every": 25 }
            """;
        var fromJson = JobSpecReader.Parse(json, "json", "a.json");
        JobSpecValidator.Validate(yaml, "a.yaml");
        Assert.Equal(fromJson.Recipe, yaml.Recipe);
        Assert.Equal(fromJson.Recycle, yaml.Recycle);
        Assert.Equal((2, 50L, 16, 25, true, 256), (yaml.Workers, yaml.Recipe.Steps, yaml.Recipe.GlobalBatch, yaml.CheckpointEvery, yaml.Recycle.ProfileFashionMnist, yaml.Recycle.ProfileCount));
    }

    [Fact]
    public void FewerTrainShardsThanWorkersAreRefusedAtSubmitNamingDataRootAndTheCounts()
    {
        string shards = Directory.CreateDirectory(dir.File("shards")).FullName;
        File.WriteAllBytes(Path.Combine(shards, "train-000000.tar"), new byte[1024]);      // only the names are counted at submit
        File.WriteAllText(Path.Combine(shards, "classes.txt"), "a\nb\n");
        var e = Invalid(Yaml($"data:\n  dataset: shards\n  root: {shards}\n"));
        Assert.Equal("data.root", e.Field);
        Assert.Contains("1 train shard for 2 workers", e.Message);
        File.WriteAllBytes(Path.Combine(shards, "train-000001.tar"), new byte[1024]);
        Assert.NotEqual("data.root", Invalid(Yaml($"data:\n  dataset: shards\n  root: {shards}\n")).Field);   // 2 shards for 2 workers pass this check (the fit check refuses the 1-channel model)
    }

    [Fact]
    public void AnUnknownFieldIsNamedWithItsPath() =>
        Assert.Contains("recipe.stepz: unknown field", Invalid(Yaml(recipe: "  stepz: 5\n")).Message);

    [Fact]
    public void AWrongTypeIsNamed()
    {
        var e = Invalid(Yaml(recipe: "  steps: many\n"));
        Assert.Equal("recipe.steps", e.Field);
        Assert.Contains("wrong type", e.Message);
    }

    [Fact]
    public void AQuotedNumberIsAStringNotANumber() => Assert.Equal("recipe.steps", Invalid(Yaml(recipe: "  steps: '50'\n")).Field);

    [Theory]
    [InlineData("  steps: 0\n  global_batch: 16\n", "recipe.steps", "must be ≥ 1, got 0")]
    [InlineData("  steps: 5\n  global_batch: 1\n", "recipe.global_batch", "must be ≥ workers (2)")]
    [InlineData("  steps: 5\n  global_batch: 16\n  accumulation: 3\n", "recipe.accumulation", "must divide global_batch 16")]
    [InlineData("  steps: 5\n  global_batch: 16\n  learning_rate: -1\n", "recipe.learning_rate", "must be > 0")]
    public void RecipeErrorsNameTheField(string recipe, string field, string problem)
    {
        var e = Invalid(Yaml(recipe: recipe));
        Assert.Equal(field, e.Field);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void SpecErrorsNameTheField()
    {
        Assert.Equal("name", Invalid(Yaml().Replace("name: fmnist-a", "name: Bad_Name")).Field);
        Assert.Equal("model", Invalid(Yaml().Replace("model: v_jetmoe_fmnist", "model: vit_huge_lol")).Field);
        Assert.Equal("workers", Invalid(Yaml().Replace("workers: 2", "workers: 0")).Field);
        var missing = Invalid(Yaml().Replace(pred, "/nope/pred.safetensors"));
        Assert.Equal("recycle.from", missing.Field);
        Assert.Contains("/nope/pred.safetensors", missing.Message);
        Assert.Equal("recycle.method", Invalid(Yaml().Replace("importance-l2", "magic")).Field);
        // importance methods need statistics
        Assert.Equal("recycle.stats", Invalid(Yaml().Replace("  profile_fashion_mnist: true\n", "")).Field);
    }

    [Fact]
    public void ElasticLimitsReadBackAndDefaultToOneAndWorkers()
    {
        var plain = JobSpecReader.Parse(Yaml(), "yaml", "job.yaml");
        Assert.Equal((1, 2), (plain.MinWorkers, plain.MaxWorkers));           // without elastic: recover on ≥ 1, grow back to workers
        var elastic = JobSpecReader.Parse(Yaml("elastic:\n  min_workers: 2\n  max_workers: 4\n"), "yaml", "job.yaml");
        JobSpecValidator.Validate(elastic, "job.yaml");
        Assert.Equal((2, 4), (elastic.MinWorkers, elastic.MaxWorkers));
        var back = JobSpecReader.Parse(JobSpecReader.ToJson(elastic), "json", "sent.json");   // the derived limits are not written as fields
        Assert.Equal(elastic.Elastic, back.Elastic);
        var onlyMax = JobSpecReader.Parse(Yaml("elastic: {max_workers: 3}\n"), "yaml", "job.yaml");
        Assert.Equal((1, 3), (onlyMax.MinWorkers, onlyMax.MaxWorkers));
    }

    [Theory]
    [InlineData("elastic: {min_workers: 0}\n", "elastic.min_workers", "must be in 1..workers (2), got 0")]
    [InlineData("elastic: {min_workers: 3}\n", "elastic.min_workers", "must be in 1..workers (2), got 3")]
    [InlineData("elastic: {max_workers: 1}\n", "elastic.max_workers", "must be in workers (2)..1024, got 1")]
    [InlineData("elastic: {max_workers: 5000}\n", "elastic.max_workers", "must be in workers (2)..1024, got 5000")]
    [InlineData("elastic: {max_workers: 32}\n", "elastic.max_workers", "must be ≤ recipe.global_batch (16)")]
    [InlineData("elastic: {min_workers: 1, max_workerz: 3}\n", "elastic.max_workerz", "unknown field")]
    public void ElasticErrorsNameTheField(string elastic, string field, string problem)
    {
        var e = Invalid(Yaml(elastic));
        Assert.Equal(field, e.Field);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void BrokenYamlAndDuplicateKeysAreNamed()
    {
        Assert.Contains("not valid YAML", Invalid("name: [unclosed\n").Message);
        var duplicate = Invalid(Yaml(recipe: "  steps: 5\n  steps: 6\n"));  // the field and its line are named
        Assert.Equal("recipe.steps", duplicate.Field);
        Assert.Contains("line 11: given twice", duplicate.Message);
        Assert.Contains("not valid JSON", Invalid("{ \"name\": ", "json").Message);
    }

    [Fact]
    public void LoadResolvesRelativePathsAgainstTheSpecsDirectoryAndJsonRoundTrips()
    {
        string file = dir.File("job.yaml");
        // a 3-channel model for CIFAR-10 at 224 (the fit check refuses CIFAR for the 1-channel Fashion-MNIST model)
        File.WriteAllText(file, Yaml().Replace(pred, "pred.safetensors").Replace("model: v_jetmoe_fmnist", "model: v_jetmoe_t") +
                                "data:\n  dataset: cifar10\n  root: cifar\n  image_size: 224\nout: runs/a\n");
        var spec = JobSpecReader.Load(file);   // the process's working directory is elsewhere
        Assert.Equal(pred, spec.Recycle.From);
        Assert.Equal(dir.File("cifar"), spec.Data.Root);
        Assert.Equal("runs/a", spec.Out);   // a path on the coordinator, inside its data directory (JobOutputs)
        var back = JobSpecReader.Parse(JobSpecReader.ToJson(spec), "json", "sent.json");
        Assert.Equal(spec.Recycle, back.Recycle);
        Assert.Equal(spec.Recipe, back.Recipe);
        Assert.Equal(spec.Data, back.Data);
        Assert.Equal((spec.Name, spec.Model, spec.Workers, spec.Out), (back.Name, back.Model, back.Workers, back.Out));
    }

    [Fact]
    public void LoadNamesAMissingFile()
    {
        var e = Assert.Throws<FileNotFoundException>(() => JobSpecReader.Load(dir.File("absent.yaml")));
        Assert.Contains("absent.yaml", e.Message);
    }
}
