using Grpc.Core;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Wire;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// Who this worker is and which job it serves: rank, world size and job id. The data plane accepts
/// a message only when it names this job and a source rank of it other than this one
/// (DESIGN.md, "Trust boundaries").
/// </summary>
public sealed class JobMembership(int rank, int worldSize, string jobId)
{
    private volatile string job = jobId;

    public int Rank { get; } = rank;
    public int WorldSize { get; } = worldSize;
    public string JobId { get => job; set => job = value; }

    public void CheckSender(DataHeader h)
    {
        string current = job;
        if (h.JobId != current)
            throw WireErrors.Refused($"rank {Rank}: message for job '{h.JobId}' refused: this worker serves job '{current}'");
        if (h.SourceRank < 0 || h.SourceRank >= WorldSize || h.SourceRank == Rank)
            throw WireErrors.Refused($"rank {Rank}: message from rank {h.SourceRank} refused: job '{current}' has ranks 0..{WorldSize - 1} and this is rank {Rank}");
    }
}
