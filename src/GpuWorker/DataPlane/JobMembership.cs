using Grpc.Core;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Wire;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// Who this worker is and which job (run) it serves: rank, world size and job id. The data plane
/// accepts a message only when it names this job and a source rank of it other than this one
/// (DESIGN.md, "Trust boundaries"). A worker started by the launcher keeps its rank and world; one
/// that joined a coordinator gets them per run (<see cref="Join"/>), swapped as one value so a
/// message is never checked against half of an old membership and half of a new one.
/// </summary>
public sealed class JobMembership(int rank, int worldSize, string jobId)
{
    private sealed record Member(int Rank, int WorldSize, string JobId);

    private volatile Member now = new(rank, worldSize, jobId);

    public int Rank => now.Rank;
    public int WorldSize => now.WorldSize;
    public string JobId { get => now.JobId; set => now = now with { JobId = value }; }

    /// <summary>Becomes rank <paramref name="rank"/> of <paramref name="worldSize"/> in run <paramref name="runId"/>.</summary>
    public void Join(string runId, int rank, int worldSize)
    {
        if (worldSize < 1 || rank < 0 || rank >= worldSize) throw new ArgumentException($"rank {rank} is outside a world of {worldSize}");
        now = new Member(rank, worldSize, runId);
    }

    public void CheckSender(DataHeader h)
    {
        var m = now;
        if (h.JobId != m.JobId)
            throw WireErrors.Refused($"rank {m.Rank}: message for job '{h.JobId}' refused: this worker serves job '{m.JobId}'");
        if (h.SourceRank < 0 || h.SourceRank >= m.WorldSize || h.SourceRank == m.Rank)
            throw WireErrors.Refused($"rank {m.Rank}: message from rank {h.SourceRank} refused: job '{m.JobId}' has ranks 0..{m.WorldSize - 1} and this is rank {m.Rank}");
    }
}
