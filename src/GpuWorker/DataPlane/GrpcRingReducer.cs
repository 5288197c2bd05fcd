using Jetpack.Model.Distributed;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// <see cref="IGradientReducer"/> as a bucketed ring all-reduce (DESIGN.md, "One training step",
/// step 4). The tensors are packed in order into flat buckets of at most
/// <see cref="ExchangeOptions.BucketElements"/> (one copy in, one copy out); each bucket is cut into
/// <c>world</c> chunks (uneven sizes allowed, empty chunks too); n−1 reduce-scatter steps pass a
/// chunk to the next rank, which adds it to its own, so rank r ends with the full sum of chunk
/// (r+1) mod n; n−1 all-gather steps pass the finished chunks around, received straight into the
/// bucket. Every rank ends with bitwise the same sums, because each chunk is summed on one rank only.
/// Each rank sends 2(n−1)/n of the data whatever n is. Built over a group (the R holders of one
/// expert slice, <c>ParallelLayout.Holders</c>), the ring runs over those ranks only; its call
/// numbers start at <c>callBase</c> so its messages never share a key with the world ring's.
/// </summary>
public sealed class GrpcRingReducer : IGradientReducer, IDisposable
{
    private readonly PeerMailbox mailbox;
    private readonly PeerChannels peers;
    private readonly ExchangeOptions options;
    private readonly byte[] buffer;
    private Tensor? scratch;                                             // receive buffer of reduce-scatter, reused
    private readonly Telemetry.WorkerMetrics? metrics;

    private readonly CancellationToken abort;
    private readonly int[]? members;                                     // world ranks of the ring; null = the whole world

    /// <summary>Where the call numbers of a group ring start (the world ring counts from 1): far above any run's call count.</summary>
    public const long GroupCallBase = 1L << 40;

    /// <param name="abort">ends a running all-reduce at once (the worker leaves the run)</param>
    /// <param name="metrics">where each all-reduce's bytes and seconds are recorded (DESIGN.md "Telemetry")</param>
    /// <param name="members">the world ranks of the ring, in ring order; null = the world</param>
    public GrpcRingReducer(PeerMailbox mailbox, PeerChannels peers, ExchangeOptions options, CancellationToken abort = default, Telemetry.WorkerMetrics? metrics = null,
                           IReadOnlyList<int>? members = null)
    {
        this.mailbox = mailbox; this.peers = peers; this.options = options; this.abort = abort; this.metrics = metrics;
        if (members is not null)
        {
            this.members = members.ToArray();
            if (Array.IndexOf(this.members, mailbox.Membership.Rank) < 0)
                throw new ArgumentException($"rank {mailbox.Membership.Rank} is not in its reduction group [{string.Join(", ", members)}]");
            call = GroupCallBase;
        }
        buffer = new byte[mailbox.Limits.ChunkBytes];
    }

    public int Rank => members is null ? mailbox.Membership.Rank : Array.IndexOf(members, mailbox.Membership.Rank);
    public int WorldSize => members?.Length ?? mailbox.Membership.WorldSize;
    private int World(int v) => members is null ? v : members[v];
    public long BytesSent { get; private set; }
    private long call;                                                   // sequence number of AllReduceSum calls, the same on every rank
    public TimeSpan Elapsed { get; private set; }

    public void AllReduceSum(long step, IReadOnlyList<Tensor> tensors)
    {
        if (WorldSize == 1 || tensors.Count == 0) return;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long thisCall = ++call;
        long bytes0 = BytesSent;
        try
        {
            int bucket = 0;
            for (int i = 0; i < tensors.Count;)
            {
                // one bucket: consecutive tensors of one dtype up to the element budget (at least one tensor)
                int j = i;
                long n = 0;
                while (j < tensors.Count && tensors[j].dtype == tensors[i].dtype
                       && (j == i || n + tensors[j].numel() <= options.BucketElements))
                    n += tensors[j++].numel();
                ReduceBucket(thisCall, step, bucket++, tensors.Skip(i).Take(j - i).ToList());
                i = j;
            }
        }
        finally
        {
            Elapsed += clock.Elapsed;
            metrics?.RecordAllReduce(mailbox.Membership.JobId, BytesSent - bytes0, clock.Elapsed.TotalSeconds);
        }
    }

    private void ReduceBucket(long thisCall, long step, int bucket, List<Tensor> group)
    {
        using var scope = NewDisposeScope();
        // a lone contiguous CPU tensor (the trainer's flat gradient buckets on a CPU rank) is reduced in
        // place; anything else (several tensors, or tensors on a GPU) is packed into one host staging
        // bucket (the socket reads and writes host memory: one device→host copy per tensor) and the sums
        // are copied back into the caller's tensors on their own device at the end
        bool inPlace = group.Count == 1 && group[0].is_contiguous() && group[0].device_type == TorchSharp.DeviceType.CPU;
        Tensor flat;
        if (inPlace) flat = group[0].detach().view(-1);                                   // [n], an alias
        else
        {
            flat = mailbox.Placement.Staging([group.Sum(t => t.numel())], group[0].dtype);  // [n], host staging
            long offset = 0;
            using var _ = no_grad();
            foreach (var t in group)
            {
                flat.narrow(0, offset, t.numel()).copy_(t.detach().reshape(-1));
                offset += t.numel();
            }
        }
        long n = flat.shape[0];
        int world = WorldSize, rank = Rank;
        var (starts, counts) = Chunks(n, world);
        Tensor Chunk(int c) => flat.narrow(0, starts[c], counts[c]);       // contiguous view: received into directly

        if (scratch is null || scratch.dtype != flat.dtype || scratch.numel() < counts.Max())
        {
            scratch?.Dispose();
            scratch = mailbox.Placement.Staging([Math.Max(counts.Max(), 1)], flat.dtype).DetachFromDisposeScope();   // host staging, lives across calls
        }
        int next = (rank + 1) % world, prev = (rank + world - 1) % world;
        for (int s = 0; s < world - 1; s++)
        {
            int sendIdx = Mod(rank - s, world), recvIdx = Mod(rank - s - 1, world);
            var into = scratch.narrow(0, 0, counts[recvIdx]);
            Pass(thisCall, step, bucket, s, ReducePhase.ReduceScatter, Chunk(sendIdx), into, World(next), World(prev));
            Chunk(recvIdx).add_(into);
        }
        for (int s = 0; s < world - 1; s++)
        {
            int sendIdx = Mod(rank + 1 - s, world), recvIdx = Mod(rank - s, world);
            Pass(thisCall, step, bucket, s, ReducePhase.AllGather, Chunk(sendIdx), Chunk(recvIdx), World(next), World(prev));
        }
        if (inPlace) return;
        long at = 0;
        foreach (var t in group)
        {
            using var _ = no_grad();
            t.copy_(flat.narrow(0, at, t.numel()).view(t.shape));
            at += t.numel();
        }
    }

    /// <summary>One ring step: send a chunk to the next rank while receiving one from the previous rank into <paramref name="into"/>.</summary>
    private void Pass(long thisCall, long step, int bucket, int ringStep, ReducePhase phase, Tensor send, Tensor into, int next, int prev)
    {
        string job = mailbox.Membership.JobId;
        var inKey = MailKey.RingChunk(job, thisCall, step, bucket, ringStep, phase, prev);
        var tag = $"step {step} all-reduce {phase} bucket {bucket} ring step {ringStep}";
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(abort);
        var received = peers.ReceiveAsync(mailbox, prev, inKey, new Expectation(into.dtype, into.shape, into), DateTime.UtcNow + options.Deadline, cts.Token);
        BytesSent += send.numel() * send.element_size();
        var sent = peers.PushAsync(next, MailKey.RingChunk(job, thisCall, step, bucket, ringStep, phase, mailbox.Membership.Rank), send, buffer,
                                             DateTime.UtcNow + options.Deadline, cts.Token);
        try
        {
            StepWaiter.AllOrFirstFailure([new(received, prev, "receive from"), new(sent, next, "send to")], mailbox.Membership.Rank, tag, options.Deadline, cts, abort, peers.Liveness?.PeerDead)
                      .GetAwaiter().GetResult();
        }
        finally
        {
            mailbox.Forget(inKey);
            try { sent.Wait(TimeSpan.FromSeconds(5)); } catch { /* reported above */ }
        }
    }

    private static int Mod(int a, int n) => ((a % n) + n) % n;

    /// <summary>Even contiguous split of n elements into world chunks (the first n % world get one more).</summary>
    public static (long[] Starts, long[] Counts) Chunks(long n, int world)
    {
        var starts = new long[world];
        var counts = new long[world];
        long q = n / world, r = n % world;
        for (int c = 0; c < world; c++)
        {
            counts[c] = q + (c < r ? 1 : 0);
            starts[c] = c * q + Math.Min(c, r);
        }
        return (starts, counts);
    }

    public void Dispose() => scratch?.Dispose();
}
