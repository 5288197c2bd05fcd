using static TorchSharp.torch;
using Jetpack.Model.Models;

namespace Jetpack.Model.Distributed;

/// <summary>The four exchanges of one MoE layer in one micro-batch (DESIGN.md, "One training step").</summary>
public enum ExchangePhase
{
    /// <summary>forward: slots go to the owners of their experts</summary>
    Dispatch = 0,
    /// <summary>forward: expert outputs come back to the slots' rank</summary>
    Return = 1,
    /// <summary>backward: output gradients go to the expert owners</summary>
    GradDispatch = 2,
    /// <summary>backward: input gradients come back</summary>
    GradReturn = 3,
}

/// <summary>What every data-plane message carries, so nothing is matched by arrival order.</summary>
public readonly record struct ExchangeTag(long Step, int Micro, int Layer, ExchangePhase Phase)
{
    public override string ToString() => $"step {Step} micro {Micro} layer {Layer} {Phase}";
}

/// <summary>
/// All-to-all of slot tensors between the ranks of one job. Implementations: in-process (tests,
/// <c>src/Model</c>) and gRPC (<c>src/GpuWorker</c>).
/// </summary>
public interface IExpertExchange
{
    int Rank { get; }
    int WorldSize { get; }

    /// <summary>
    /// Sends <paramref name="send"/>[v] to rank v and returns what every rank v sent to this rank,
    /// indexed by v (the own piece is passed through). <paramref name="expected"/>[v] is the shape
    /// rank v's piece must have; the dtype is that of the own piece. Blocks until every piece for
    /// <paramref name="tag"/> has arrived; fails with <see cref="ExchangeFailedException"/> naming
    /// the rank and the phase when a peer is gone or the deadline passes — never hangs.
    /// </summary>
    Tensor[] AllToAll(ExchangeTag tag, IReadOnlyList<Tensor> send, IReadOnlyList<long[]> expected);
}

/// <summary>Sums tensors across the ranks of one job, in place (bucketed ring all-reduce over gRPC).</summary>
public interface IGradientReducer
{
    int Rank { get; }
    int WorldSize { get; }

    /// <summary>
    /// Every rank passes the same list (same order, shapes, dtypes); on return each tensor holds
    /// the elementwise sum over ranks, identical on every rank.
    /// </summary>
    void AllReduceSum(long step, IReadOnlyList<Tensor> tensors);
}

/// <summary>A step failed because of the distributed machinery (peer gone, deadline, bad message).</summary>
public sealed class ExchangeFailedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The experts one rank owns in an MoE layer: a contiguous range of the core experts and a
/// contiguous range of the universal experts, placed by compute (<see cref="ExpertPlacement"/>:
/// core experts split evenly, universal experts levelling the cost), so counts that do not divide
/// evenly work.
/// </summary>
public readonly record struct ExpertRange(int CoreStart, int CoreCount, int UnivStart, int UnivCount)
{
    public int Count => CoreCount + UnivCount;

    /// <summary>Position <paramref name="rank"/>'s experts in an expert group of <paramref name="worldSize"/> ranks.</summary>
    public static ExpertRange For(MoeConfig config, int worldSize, int rank)
    {
        if (worldSize < 1 || rank < 0 || rank >= worldSize)
            throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} outside world of {worldSize}");
        return ExpertPlacement.Ranges(config, worldSize)[rank];
    }

    /// <summary>Even contiguous split of <paramref name="count"/> items over ranks.</summary>
    public static (int Start, int Count) Split(int count, int worldSize, int rank)
    {
        if (worldSize < 1 || rank < 0 || rank >= worldSize)
            throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} outside world of {worldSize}");
        int q = count / worldSize, r = count % worldSize;
        return (rank * q + Math.Min(rank, r), q + (rank < r ? 1 : 0));
    }

    public override string ToString() =>
        $"core [{CoreStart}, {CoreStart + CoreCount}) univ [{UnivStart}, {UnivStart + UnivCount})";
}
