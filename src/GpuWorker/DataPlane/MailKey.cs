using Jetpack.Model.Distributed;
using Jetpack.Protocol.Wire;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// Identifies one tensor of the data plane: its job, its tag (an all-to-all piece or a chunk of a
/// ring all-reduce) and its source rank. Receivers match arrivals by this key, never by order.
/// </summary>
public readonly record struct MailKey(string Job, bool Reduce, long Step, int A, int B, int Phase, int Source, long Call = 0)
{
    public static MailKey Exchange(string job, ExchangeTag tag, int source) =>
        new(job, false, tag.Step, tag.Micro, tag.Layer, (int)tag.Phase, source);

    public static MailKey RingChunk(string job, long call, long step, int bucket, int ringStep, ReducePhase phase, int source) =>
        new(job, true, step, bucket, ringStep, (int)phase, source, call);

    /// <summary>The key a data-plane header names; null when the header carries no tag.</summary>
    public static MailKey? From(DataHeader h)
    {
        switch (h.TagCase)
        {
            case DataHeader.TagOneofCase.Slot:
                var e = h.Slot;
                if (e.Phase == SlotPhase.Unspecified || !Enum.IsDefined(e.Phase)) return null;
                return new MailKey(h.JobId, false, e.Step, e.Micro, e.Layer, (int)e.Phase - 1, h.SourceRank);
            case DataHeader.TagOneofCase.Reduce:
                var r = h.Reduce;
                if (r.Phase == ReducePhase.Unspecified || !Enum.IsDefined(r.Phase)) return null;
                return new MailKey(h.JobId, true, r.Step, r.Bucket, r.RingStep, (int)r.Phase, h.SourceRank, r.Call);
            default:
                return null;
        }
    }

    /// <summary>The header that carries this key (tensor header filled in by the sender).</summary>
    public DataHeader ToHeader()
    {
        var h = new DataHeader { JobId = Job, SourceRank = Source };
        if (Reduce) h.Reduce = new ReduceTag { Step = Step, Bucket = A, RingStep = B, Phase = (ReducePhase)Phase, Call = Call };
        else h.Slot = new SlotTag { Step = Step, Micro = A, Layer = B, Phase = (SlotPhase)(Phase + 1) };
        return h;
    }

    /// <summary>The phase as errors name it.</summary>
    public string PhaseName => Reduce
        ? $"all-reduce {(ReducePhase)Phase}"
        : $"{(ExchangePhase)Phase}";

    public override string ToString() => Reduce
        ? $"job {Job} step {Step} {PhaseName} (call {Call}) bucket {A} ring step {B} from rank {Source}"
        : $"job {Job} step {Step} micro {A} layer {B} {PhaseName} from rank {Source}";
}
