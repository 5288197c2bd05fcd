using Jetpack.Model.Distributed;
using Jetpack.Protocol.Codec;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// <see cref="IExpertExchange"/> over gRPC (DESIGN.md, "One training step", step 2): every piece for
/// another rank goes as one Push stream tagged (job, step, micro, layer, phase, source); pieces for
/// this rank are expected under the same tags before anything is sent; they arrive on the rank's
/// configured device (<see cref="PeerMailbox.Placement"/>), beside its own piece. Blocking by contract: the
/// trainer's thread waits while the sends and receives run on the thread pool.
/// </summary>
public sealed class GrpcExpertExchange : IExpertExchange
{
    private readonly PeerMailbox mailbox;
    private readonly PeerChannels peers;
    private readonly ExchangeOptions options;
    private readonly byte[][] buffers;
    private readonly CancellationToken abort;
    private readonly Telemetry.WorkerMetrics? metrics;

    /// <param name="abort">ends a running exchange at once (the worker leaves the run)</param>
    /// <param name="metrics">where each exchange's bytes and seconds are recorded (DESIGN.md "Telemetry")</param>
    public GrpcExpertExchange(PeerMailbox mailbox, PeerChannels peers, ExchangeOptions options, CancellationToken abort = default, Telemetry.WorkerMetrics? metrics = null)
    {
        this.mailbox = mailbox; this.peers = peers; this.options = options; this.abort = abort; this.metrics = metrics;
        buffers = Enumerable.Range(0, WorldSize).Select(_ => new byte[mailbox.Limits.ChunkBytes]).ToArray();
    }

    public int Rank => mailbox.Membership.Rank;
    public int WorldSize => mailbox.Membership.WorldSize;

    /// <summary>Bytes sent to other ranks and seconds spent in exchanges since the start (for telemetry and the benchmark).</summary>
    public long BytesSent { get; private set; }
    public TimeSpan Elapsed { get; private set; }

    public Tensor[] AllToAll(ExchangeTag tag, IReadOnlyList<Tensor> send, IReadOnlyList<long[]> expected)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long bytes0 = BytesSent;
        try
        {
            var got = AllToAllAsync(tag, send, expected).GetAwaiter().GetResult();
            // The pieces were built on pool threads, outside the caller's dispose scope: re-handle
            // them here (an alias, no copy) so the caller's NewDisposeScope() owns them as it would
            // own tensors it made itself.
            for (int v = 0; v < got.Length; v++)
            {
                if (v == Rank) continue;
                var own = got[v].alias();
                got[v].Dispose();
                got[v] = own;
            }
            return got;
        }
        finally
        {
            Elapsed += clock.Elapsed;
            if (WorldSize > 1) metrics?.RecordAllToAll(mailbox.Membership.JobId, tag.Layer, BytesSent - bytes0, clock.Elapsed.TotalSeconds);
        }
    }

    public async Task<Tensor[]> AllToAllAsync(ExchangeTag tag, IReadOnlyList<Tensor> send, IReadOnlyList<long[]> expected)
    {
        int rank = Rank, world = WorldSize;
        string job = mailbox.Membership.JobId;
        if (send.Count != world || expected.Count != world)
            throw new ArgumentException($"rank {rank}: {tag}: {send.Count} pieces to send and {expected.Count} expected shapes for a world of {world}");
        var dtype = send[rank].dtype;
        if (!send[rank].shape.SequenceEqual(expected[rank]))
            throw new ExchangeFailedException($"rank {rank}: {tag}: own piece has shape {WireErrors.Shape(send[rank].shape)}, expected {WireErrors.Shape(expected[rank])}");
        for (int v = 0; v < world; v++)
            if (send[v].dtype != dtype)
                throw new ArgumentException($"rank {rank}: {tag}: piece for rank {v} is {send[v].dtype}, the own piece {dtype}: one dtype per exchange");

        var result = new Tensor[world];
        result[rank] = send[rank];                                      // passed through, no copy
        if (world == 1) return result;

        var deadline = DateTime.UtcNow + options.Deadline;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(abort);
        var keys = new List<MailKey>();
        var ops = new List<StepWaiter.Op>();
        var receives = new Task<Tensor>?[world];
        var readables = new List<Tensor>();
        try
        {
            for (int v = 0; v < world; v++)
            {
                if (v == rank) continue;
                var key = MailKey.Exchange(job, tag, v);
                keys.Add(key);
                receives[v] = mailbox.Expect(key, new Expectation(dtype, expected[v], Device: mailbox.Placement.Device));   // lands on the rank's device
                ops.Add(new(receives[v]!, v, "receive from"));
            }
            for (int v = 0; v < world; v++)
            {
                if (v == rank) continue;
                var readable = TensorCodec.Readable(send[v]);
                readables.Add(readable);
                BytesSent += readable.numel() * readable.element_size();
                ops.Add(new(peers.PushAsync(v, MailKey.Exchange(job, tag, rank), readable, buffers[v], deadline, cts.Token), v, "send to"));
            }
            await StepWaiter.AllOrFirstFailure(ops, rank, tag.ToString(), options.Deadline, cts, abort);
            for (int v = 0; v < world; v++)
                if (v != rank) result[v] = receives[v]!.Result;
            return result;
        }
        catch
        {
            foreach (var r in receives) if (r is { IsCompletedSuccessfully: true }) r.Result.Dispose();
            throw;
        }
        finally
        {
            foreach (var k in keys) mailbox.Forget(k);
            // sends hold their readable tensor until they end: wait for cancelled ones before freeing
            try { await Task.WhenAll(ops.Select(o => o.Task)).WaitAsync(TimeSpan.FromSeconds(5)); } catch { /* already reported */ }
            foreach (var t in readables) t.Dispose();
        }
    }
}
