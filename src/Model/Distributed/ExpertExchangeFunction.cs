using TorchSharp;
using static TorchSharp.torch;
using Jetpack.Model.Models;

namespace Jetpack.Model.Distributed;

/// <summary>
/// The seam of expert parallelism (DESIGN.md, "One training step", steps 2–3): a custom autograd
/// function from the slots of this rank's samples to the expert outputs of those slots, whose
/// forward sends every slot to the owner of its expert and runs this rank's experts on what it
/// receives, and whose backward mirrors it.
///
/// Letters: b this rank's samples, B all ranks' samples of the micro-batch (rank order), e all
/// experts (core then universal), c this rank's experts (its core part then its universal part),
/// s slots per expert, d width.
///
/// Forward: X̃ [b, e, s, d] → per destination v, its core and universal columns [b, c_v, s, d] →
/// AllToAll(Dispatch) → concatenated over sources along the batch [B, c, s, d] → own experts (one
/// batched call per bank, with grad enabled locally so the expert graph is kept) → split back per
/// source [b_u, c, s, d] → AllToAll(Return) → reassembled [b, e, s, d].
/// Backward: the output gradient [b, e, s, d] takes the same path (GradDispatch), is pushed through
/// the kept expert graph (expert parameter gradients accumulate here, on the owner; staged backward
/// is exact, ENVIRONMENT.md), and the input gradient [B, c, s, d] goes back (GradReturn).
/// An exception escaping a C# backward aborts the process, so backward catches everything, records
/// it on the <see cref="ExpertShard"/> and returns zeros; the trainer throws after backward.
/// </summary>
internal sealed class ExpertExchangeFunction : autograd.SingleTensorFunction<ExpertExchangeFunction>
{
    public override string Name => "ExpertExchange";

    /// <summary>slots [b, e, s, d] → expert outputs [b, e, s, d], differentiable through the exchange.</summary>
    public static Tensor Apply(Tensor slots, ExpertExchangeCall call)
    {
        // Decided here, where grad mode is the caller's (forward itself runs with grad disabled).
        call.KeepGraph = is_grad_enabled() && slots.requires_grad;
        return apply(slots, call);
    }

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var call = (ExpertExchangeCall)vars[1];
        ctx.save_data("call", call);
        return call.Forward((Tensor)vars[0]);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var call = (ExpertExchangeCall)ctx.get_data("call");
        return [call.Backward(gradOutput), null!];           // no gradient for the non-tensor argument
    }
}

/// <summary>One application of <see cref="ExpertExchangeFunction"/>: what its backward needs from its forward.</summary>
internal sealed class ExpertExchangeCall(ExpertShard shard, int layer, MoeConfig config, Func<Tensor, Tensor> runLocal) : IDisposable
{
    private readonly ExpertRange[] ranges = Enumerable.Range(0, shard.WorldSize).Select(v => shard.RangeOf(config, v)).ToArray();
    private Tensor? localIn, localOut;                        // [B, c, s, d], kept from forward for backward
    private long step;
    private int micro;
    private int[] batches = [];

    public bool KeepGraph { get; set; }

    private ExchangeTag Tag(ExchangePhase phase) => new(step, micro, layer, phase);
    private IExpertExchange Exchange => shard.Exchange
        ?? throw new InvalidOperationException($"MoE layer {layer}: rank {shard.Rank} of {shard.WorldSize} has no expert exchange");

    public Tensor Forward(Tensor slots)
    {
        step = shard.Step; micro = shard.Micro; batches = shard.RankBatches.ToArray();
        int me = shard.Rank;
        if (batches.Length != shard.WorldSize || slots.shape[0] != batches[me])
            throw new InvalidOperationException(
                $"MoE layer {layer}, rank {me}: slots hold {slots.shape[0]} samples but the micro-batch says [{string.Join(", ", batches)}] per rank (call ExpertShard.BeginMicroBatch before the forward)");
        if (slots.shape[1] != config.TotalExperts)
            throw new ArgumentException($"MoE layer {layer}: slots [{string.Join(", ", slots.shape)}] must have {config.TotalExperts} experts on dim 1");
        long s = slots.shape[2], d = slots.shape[3];
        int mine = ranges[me].Count;
        using var scope = NewDisposeScope();

        var received = Exchange.AllToAll(Tag(ExchangePhase.Dispatch), SplitByOwner(slots),
            batches.Select(bu => new[] { bu, mine, s, d }).ToArray());                             // v: [b_v, c, s, d]
        var input = torch.cat(received, 0);                                                         // [B, c, s, d]
        Tensor output;
        if (KeepGraph)
        {
            localIn = input.detach().requires_grad_(true).DetachFromDisposeScope();
            using (torch.enable_grad()) localOut = runLocal(localIn).DetachFromDisposeScope();      // [B, c, s, d] with graph
            shard.Keep(this);
            output = localOut.detach();
        }
        else output = runLocal(input);

        var back = Exchange.AllToAll(Tag(ExchangePhase.Return), SplitBySource(output),
            ranges.Select(r => new[] { (long)batches[me], r.Count, s, d }).ToArray());             // v: [b, c_v, s, d]
        return Assemble(back).MoveToOuterDisposeScope();                                            // [b, e, s, d]
    }

    public Tensor Backward(Tensor gradOutput)
    {
        var tag = Tag(ExchangePhase.GradDispatch);
        try
        {
            if (shard.BackwardFailure is not null || localIn is null || localOut is null)
            {
                if (shard.BackwardFailure is null)
                    shard.RecordBackwardFailure(new InvalidOperationException("backward without a kept forward graph"), tag);
                return torch.zeros_like(gradOutput);
            }
            int me = shard.Rank;
            long s = gradOutput.shape[2], d = gradOutput.shape[3];
            using var scope = NewDisposeScope();
            var received = Exchange.AllToAll(tag, SplitByOwner(gradOutput),
                batches.Select(bu => new[] { bu, ranges[me].Count, s, d }).ToArray());              // v: [b_v, c, s, d]
            var g = torch.cat(received, 0);                                                          // [B, c, s, d]
            using (torch.enable_grad()) torch.autograd.backward([localOut], [g]);                    // expert grads stay here
            var gradIn = localIn.grad is { } gi ? gi.detach() : torch.zeros_like(localIn);           // [B, c, s, d]
            tag = Tag(ExchangePhase.GradReturn);
            var back = Exchange.AllToAll(tag, SplitBySource(gradIn),
                ranges.Select(r => new[] { (long)batches[me], r.Count, s, d }).ToArray());          // v: [b, c_v, s, d]
            return Assemble(back).MoveToOuterDisposeScope();                                         // [b, e, s, d]
        }
        catch (Exception e)
        {
            shard.RecordBackwardFailure(e, tag);
            return torch.zeros_like(gradOutput);
        }
        finally
        {
            try { shard.Release(this); } catch (Exception e) { shard.RecordBackwardFailure(e, tag); }
        }
    }

    /// <summary>x [b, e, s, d] → per rank v its experts' columns [b, c_v, s, d] (core part, then universal part).</summary>
    private Tensor[] SplitByOwner(Tensor x)
    {
        int ec = config.CoreExperts;
        return ranges.Select(r => torch.cat([x.narrow(1, r.CoreStart, r.CoreCount), x.narrow(1, ec + r.UnivStart, r.UnivCount)], 1)
                                     .contiguous()).ToArray();
    }

    /// <summary>y [B, c, s, d] → per source rank u its samples [b_u, c, s, d].</summary>
    private Tensor[] SplitBySource(Tensor y)
    {
        var parts = new Tensor[batches.Length];
        long at = 0;
        for (int u = 0; u < batches.Length; u++) { parts[u] = y.narrow(0, at, batches[u]).contiguous(); at += batches[u]; }
        return parts;
    }

    /// <summary>Pieces [b, c_v, s, d] from every owner v → [b, e, s, d] (core experts of all ranks, then universal).</summary>
    private Tensor Assemble(Tensor[] pieces)
    {
        var core = pieces.Select((p, v) => p.narrow(1, 0, ranges[v].CoreCount));
        var univ = pieces.Select((p, v) => p.narrow(1, ranges[v].CoreCount, ranges[v].UnivCount));
        return torch.cat(core.Concat(univ).ToArray(), 1);
    }

    public void Dispose()
    {
        localIn?.Dispose(); localIn = null;
        localOut?.Dispose(); localOut = null;
    }
}
