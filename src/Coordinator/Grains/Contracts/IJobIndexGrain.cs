namespace Jetpack.Coordinator.Grains.Contracts;

/// <summary>
/// The list of job ids (key 0), persisted: what <c>jetpack list</c> enumerates and what the
/// coordinator resumes after a restart. Job grains add themselves; the index never calls them.
/// </summary>
public interface IJobIndexGrain : IGrainWithIntegerKey
{
    Task Add(string jobId);
    Task<IReadOnlyList<string>> List();
}
