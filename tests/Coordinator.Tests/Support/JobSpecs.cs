namespace Jetpack.Coordinator.Tests.Support;

/// <summary>Job specs for tests: the "checkpoints" are small files (the fake recycler only hashes them).</summary>
public static class JobSpecs
{
    public static string Checkpoint(TempDir dir, string name, string content)
    {
        string path = dir.File(name);
        File.WriteAllText(path, content);
        return path;
    }

    public static string Yaml(string name, string from, int workers = 1, long steps = 5, long seed = 3407, string method = "random") => $"""
        name: {name}
        model: v_jetmoe_fmnist
        workers: {workers}
        recycle:
          from: {from}
          method: {method}
          seed: {seed}
        recipe:
          steps: {steps}
          global_batch: 8
        """;
}
