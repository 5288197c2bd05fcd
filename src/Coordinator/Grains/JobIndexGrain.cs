using Jetpack.Coordinator.Grains.Contracts;

namespace Jetpack.Coordinator.Grains;

/// <summary>The persisted set of job ids, in submission order.</summary>
public sealed class JobIndexGrain([PersistentState("index", StorageNames.Jobs)] IPersistentState<JobIndexState> store) : Grain, IJobIndexGrain
{
    public async Task Add(string jobId)
    {
        if (store.State.JobIds.Contains(jobId)) return;
        store.State.JobIds.Add(jobId);
        await store.WriteStateAsync();
    }

    public Task<IReadOnlyList<string>> List() => Task.FromResult<IReadOnlyList<string>>([.. store.State.JobIds]);
}

[GenerateSerializer]
public sealed class JobIndexState
{
    [Id(0)] public List<string> JobIds { get; set; } = [];
}
