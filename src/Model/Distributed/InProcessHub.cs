using static TorchSharp.torch;

namespace Jetpack.Model.Distributed;

/// <summary>
/// N ranks in one process, one thread each (tests and the standing equivalence proof): endpoint r is
/// rank r's <see cref="IExpertExchange"/> and <see cref="IGradientReducer"/>. Pieces cross threads
/// as copies detached from the sender's dispose scope; the receiver takes ownership. Every wait has
/// a deadline and names what it waited for; <see cref="Abort"/> (called by any failing endpoint)
/// wakes every waiter with the reason, so one failed rank fails the others quickly instead of
/// leaving them to their deadlines. Grad mode and dispose scopes are per thread (ENVIRONMENT.md), so
/// each rank's thread owns its model; <c>manual_seed</c> is global, so ranks use their own generators.
/// </summary>
public sealed class InProcessHub
{
    private readonly object gate = new();
    private readonly Dictionary<(ExchangeTag Tag, int From, int To), Tensor> mail = [];
    private readonly Dictionary<(string Group, long Call), Reduction> reductions = [];
    private readonly Endpoint[] endpoints;
    private string? aborted;

    public InProcessHub(int worldSize, TimeSpan timeout)
    {
        if (worldSize < 1) throw new ArgumentOutOfRangeException(nameof(worldSize), $"world size must be ≥ 1, got {worldSize}");
        WorldSize = worldSize;
        Timeout = timeout;
        var all = Enumerable.Range(0, worldSize).ToArray();
        endpoints = all.Select(r => new Endpoint(this, all, r, "world")).ToArray();
    }

    public int WorldSize { get; }
    public TimeSpan Timeout { get; }

    /// <summary>Rank <paramref name="rank"/>'s side of the hub: both seams.</summary>
    public Endpoint this[int rank] => endpoints[rank];

    /// <summary>
    /// Rank <paramref name="rank"/>'s side of a sub-group (an expert group or the holders of one expert
    /// slice, <see cref="ParallelLayout"/>): both seams over <paramref name="members"/> (world ranks,
    /// in group order) only, with Rank = the place of <paramref name="rank"/> among them. Every member
    /// must ask with the same list; pieces are still addressed by world rank, and reductions are
    /// counted per group, so groups never meet each other's messages.
    /// </summary>
    public Endpoint Group(int rank, IReadOnlyList<int> members)
    {
        var m = members.ToArray();
        if (m.Length == 0 || m.Any(r => r < 0 || r >= WorldSize) || m.Distinct().Count() != m.Length)
            throw new ArgumentException($"group [{string.Join(", ", m)}] must list distinct ranks of a world of {WorldSize}");
        int at = Array.IndexOf(m, rank);
        if (at < 0) throw new ArgumentException($"rank {rank} is not in group [{string.Join(", ", m)}]");
        return new Endpoint(this, m, at, "group " + string.Join(",", m));
    }

    /// <summary>Fails every current and future wait with <paramref name="reason"/>.</summary>
    public void Abort(string reason)
    {
        lock (gate)
        {
            aborted ??= reason;
            Monitor.PulseAll(gate);
        }
    }

    private void WaitUntil(Func<bool> ready, string what, int rank)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!ready())
        {
            if (aborted is not null) throw new ExchangeFailedException($"rank {rank}: {what}: the job was aborted: {aborted}");
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !Monitor.Wait(gate, left) && !ready())
            {
                var e = new ExchangeFailedException($"rank {rank}: {what}: nothing after {Timeout.TotalSeconds:g} s");
                aborted ??= e.Message;
                Monitor.PulseAll(gate);
                throw e;
            }
        }
    }

    private sealed class Reduction(int world, long step)
    {
        public readonly long Step = step;
        public readonly List<Tensor>?[] Parts = new List<Tensor>?[world];
        public int Taken;
    }

    public sealed class Endpoint : IExpertExchange, IGradientReducer
    {
        private readonly InProcessHub hub;
        private readonly int[] members;                                  // world ranks of the group, in group order
        private readonly string group;
        private long reductionsCalled;

        /// <param name="group">names the reductions of this endpoint's group: the world's and a sub-group's never meet, even over the same ranks</param>
        internal Endpoint(InProcessHub hub, int[] members, int rank, string group)
        {
            this.hub = hub; this.members = members; Rank = rank; this.group = group;
        }

        /// <summary>The place in the group (the world rank for the hub's own endpoints).</summary>
        public int Rank { get; }
        public int WorldSize => members.Length;
        private int Me => members[Rank];

        public Tensor[] AllToAll(ExchangeTag tag, IReadOnlyList<Tensor> send, IReadOnlyList<long[]> expected)
        {
            if (send.Count != WorldSize || expected.Count != WorldSize)
                throw new ExchangeFailedException($"rank {Me}, {tag}: {send.Count} pieces and {expected.Count} shapes for a world of {WorldSize}");
            var copies = send.Select(t => t.detach().clone().DetachFromDisposeScope()).ToArray();   // one copy per piece, owned by the hub
            var got = new Tensor[WorldSize];
            lock (hub.gate)
            {
                for (int v = 0; v < WorldSize; v++)
                    if (!hub.mail.TryAdd((tag, Me, members[v]), copies[v]))
                        throw new ExchangeFailedException($"rank {Me}, {tag}: a piece for rank {v} was already sent");
                Monitor.PulseAll(hub.gate);
                for (int u = 0; u < WorldSize; u++)
                {
                    var key = (tag, members[u], Me);
                    hub.WaitUntil(() => hub.mail.ContainsKey(key), $"{tag}: waiting for the piece of rank {u}", Me);
                    hub.mail.Remove(key, out var piece);
                    got[u] = piece!;
                }
            }
            try
            {
                for (int u = 0; u < WorldSize; u++)
                {
                    ExchangeChecks.Shape(got[u], expected[u], u, Rank, tag);
                    if (got[u].dtype != send[Rank].dtype)
                        throw new ExchangeFailedException($"{tag}: the piece from rank {u} is {got[u].dtype}, expected {send[Rank].dtype}");
                }
            }
            catch (Exception e)
            {
                foreach (var t in got) t.Dispose();
                hub.Abort(e.Message);
                throw;
            }
            var owned = got.Select(t => t.alias()).ToArray();            // into this thread's dispose scope
            foreach (var t in got) t.Dispose();
            return owned;
        }

        /// <summary>The n-th call of every rank meets the n-th call of the others; all sum in rank order, so all get the same bits.</summary>
        public void AllReduceSum(long step, IReadOnlyList<Tensor> tensors)
        {
            long n = reductionsCalled++;
            var mine = tensors.Select(t => t.detach().clone().DetachFromDisposeScope()).ToList();
            Reduction r;
            lock (hub.gate)
            {
                if (!hub.reductions.TryGetValue((group, n), out r!)) hub.reductions[(group, n)] = r = new Reduction(WorldSize, step);
                if (r.Step != step)
                {
                    hub.Abort($"all-reduce #{n}: rank {Rank} is at step {step}, another rank at step {r.Step}");
                    throw new ExchangeFailedException($"rank {Me}: all-reduce #{n} of step {step} met step {r.Step}");
                }
                r.Parts[Rank] = mine;
                Monitor.PulseAll(hub.gate);
                hub.WaitUntil(() => r.Parts.All(p => p is not null), $"all-reduce #{n} of step {step}", Me);
            }
            try
            {
                using var _ = no_grad();
                for (int i = 0; i < tensors.Count; i++)
                {
                    var parts = r.Parts.Select(p => p![i]).ToArray();
                    if (parts.Any(p => !p.shape.SequenceEqual(tensors[i].shape) || p.dtype != tensors[i].dtype))
                        throw new ExchangeFailedException($"rank {Me}: all-reduce #{n} of step {step}: tensor {i} differs in shape or dtype between ranks");
                    tensors[i].copy_(parts[0]);
                    for (int u = 1; u < parts.Length; u++) tensors[i].add_(parts[u]);
                }
            }
            catch (Exception e)
            {
                hub.Abort(e.Message);
                throw;
            }
            finally
            {
                lock (hub.gate)
                    if (++r.Taken == WorldSize)
                    {
                        hub.reductions.Remove((group, n));
                        foreach (var p in r.Parts) foreach (var t in p!) t.Dispose();
                    }
            }
        }
    }
}
