using static TorchSharp.torch;

namespace Jetpack.Model.Distributed;

/// <summary>
/// The one-rank reference implementation of both seams: the all-to-all passes the own piece through
/// (checking its shape, as a remote one must), the all-reduce of one rank is the identity. A model
/// built with <c>new ExpertShard(1, 0, new LocalExchange())</c> runs its experts through
/// <see cref="ExpertExchangeFunction"/> and must equal the plain model.
/// </summary>
public sealed class LocalExchange : IExpertExchange, IGradientReducer
{
    public int Rank => 0;
    public int WorldSize => 1;

    public Tensor[] AllToAll(ExchangeTag tag, IReadOnlyList<Tensor> send, IReadOnlyList<long[]> expected)
    {
        if (send.Count != 1 || expected.Count != 1)
            throw new ExchangeFailedException($"rank 0, {tag}: {send.Count} pieces and {expected.Count} shapes for a world of 1");
        ExchangeChecks.Shape(send[0], expected[0], from: 0, to: 0, tag);
        return [send[0].alias()];
    }

    public void AllReduceSum(long step, IReadOnlyList<Tensor> tensors) { }
}
