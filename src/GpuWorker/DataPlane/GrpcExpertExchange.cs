using Jetpack.Model.Distributed;
using Jetpack.Protocol.Codec;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// <see cref="IExpertExchange"/> over gRPC (DESIGN.md, "One training step", step 2): every piece for
/// another rank goes as one Push stream tagged (job, step, micro, layer, phase, source); pieces for
/// this rank are expected under the same tags before anything is sent; they arrive on the rank's
/// configured device (<see cref="PeerMailbox.Placement"/>), beside its own piece. Blocking by contract: the
/// trainer's thread waits while the sends and receives run on the thread pool. Built over a group
/// (an expert group of <c>ParallelLayout</c>), it exchanges with those ranks only: Rank and WorldSize
/// are then the place in the group and G, while messages name world ranks.
/// </summary>
public sealed class GrpcExpertExchange : IExpertExchange
{
    private readonly PeerMailbox mailbox;
    private readonly PeerChannels peers;
    private readonly ExchangeOptions options;
    private readonly byte[][] buffers;
    private readonly CancellationToken abort;
    private readonly Telemetry.WorkerMetrics? metrics;
    private readonly int[]? members;                                     // world ranks of the group; null = the whole world

    /// <param name="abort">ends a running exchange at once (the worker leaves the run)</param>
    /// <param name="metrics">where each exchange's bytes and seconds are recorded (DESIGN.md "Telemetry")</param>
    /// <param name="members">the world ranks of this rank's expert group, in group order; null = the world</param>
    public GrpcExpertExchange(PeerMailbox mailbox, PeerChannels peers, ExchangeOptions options, CancellationToken abort = default, Telemetry.WorkerMetrics? metrics = null,
                              IReadOnlyList<int>? members = null)
    {
        this.mailbox = mailbox; this.peers = peers; this.options = options; this.abort = abort; this.metrics = metrics;
        if (members is not null)
        {
            this.members = members.ToArray();
            if (Array.IndexOf(this.members, mailbox.Membership.Rank) < 0)
                throw new ArgumentException($"rank {mailbox.Membership.Rank} is not in its expert group [{string.Join(", ", members)}]");
        }
        buffers = Enumerable.Range(0, WorldSize).Select(_ => new byte[mailbox.Limits.ChunkBytes]).ToArray();
    }

    public int Rank => members is null ? mailbox.Membership.Rank : Array.IndexOf(members, mailbox.Membership.Rank);
    public int WorldSize => members?.Length ?? mailbox.Membership.WorldSize;
    /// <summary>The world rank of group place <paramref name="v"/>.</summary>
    private int World(int v) => members is null ? v : members[v];

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
                var key = MailKey.Exchange(job, tag, World(v));
                keys.Add(key);
                receives[v] = peers.ReceiveAsync(mailbox, World(v), key, new Expectation(dtype, expected[v], Device: mailbox.Placement.Device),   // lands on the rank's device
                                                 deadline, cts.Token);
                ops.Add(new(receives[v]!, World(v), "receive from"));
            }
            for (int v = 0; v < world; v++)
            {
                if (v == rank) continue;
                var readable = TensorCodec.Readable(send[v]);
                readables.Add(readable);
                BytesSent += readable.numel() * readable.element_size();
                ops.Add(new(peers.PushAsync(World(v), MailKey.Exchange(job, tag, World(rank)), readable, buffers[v], deadline, cts.Token), World(v), "send to"));
            }
            await StepWaiter.AllOrFirstFailure(ops, World(rank), tag.ToString(), options.Deadline, cts, abort, peers.Liveness?.PeerDead);
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
