using System.Diagnostics;
using Jetpack.GpuWorker.Hosting;
using Jetpack.Model.Distributed;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.Control;

/// <summary>
/// The worker's half of `jetpack bench exchange`: timed all-to-alls of one fixed-size piece per peer.
/// Piece values encode (source, destination, round), so the last round's arrivals are checked.
/// </summary>
public static class ExchangeBench
{
    public static BenchExchangeReply Run(WorkerNode node, BenchExchangeRequest request)
    {
        int world = node.Membership.WorldSize, rank = node.Membership.Rank;
        var dtype = request.Dtype is "bf16" or "bfloat16" ? ScalarType.BFloat16 : ScalarType.Float32;
        long elements = request.BytesPerPeer / (dtype == ScalarType.Float32 ? 4 : 2);
        var shapes = Enumerable.Range(0, world).Select(_ => new[] { elements }).ToArray();
        var exchange = node.Exchange;
        long sentBefore = exchange.BytesSent;
        var clock = new Stopwatch();
        bool verified = true;
        long received = 0;
        int total = request.Warmup + request.Rounds;
        // the pieces are made once and refilled outside the clock: only the exchanges are timed
        var send = Enumerable.Range(0, world).Select(_ => empty(elements, dtype)).ToArray();   // [elements] each
        try
        {
            for (int round = 0; round < total; round++)
            {
                using var scope = NewDisposeScope();
                for (int v = 0; v < world; v++) send[v].fill_(Value(rank, v, round));
                if (round == request.Warmup) sentBefore = exchange.BytesSent;
                if (round >= request.Warmup) clock.Start();
                var got = exchange.AllToAll(new ExchangeTag(node.NextBenchStep(), 0, 0, Model.Distributed.ExchangePhase.Dispatch), send, shapes);
                clock.Stop();
                if (round >= request.Warmup) received += got.Where((_, v) => v != rank).Sum(t => t.numel() * t.element_size());
                if (round == total - 1)
                    for (int v = 0; v < world; v++)
                        verified &= got[v].eq(Value(v, rank, round)).all().item<bool>();
            }
        }
        finally
        {
            foreach (var t in send) t.Dispose();
        }
        return new BenchExchangeReply
        {
            Rank = rank, Seconds = clock.Elapsed.TotalSeconds, BytesSent = exchange.BytesSent - sentBefore, BytesReceived = received, Verified = verified,
        };
    }

    /// <summary>A value exact in bf16 too: small integers.</summary>
    static float Value(int source, int destination, int round) => source * 16 + destination + (round % 7) * 64;
}
