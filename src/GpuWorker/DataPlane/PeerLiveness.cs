using Grpc.Core;
using Jetpack.Protocol.Wire;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// The data plane's own liveness check (DESIGN.md "Planes": a hung peer is known in seconds, not at a
/// deadline; issue 20 faults 3 and 4). While a run of more than one rank is joined, every peer is
/// pinged (its token-protected Health, answered by the peer's process, so a SIGSTOPped peer, a
/// downed link and a partition all look the same: no answer) every <see cref="LivenessOptions.PingInterval"/>.
/// A peer that has not answered for <see cref="LivenessOptions.Timeout"/> is dead: <see cref="PeerDead"/>
/// completes with its rank and the pending step fails at once (<see cref="StepWaiter"/>), also on a
/// rank that only receives from it. The ranks it cannot reach are reported in this rank's Health
/// (<see cref="Unreachable"/>), so the coordinator can tell a partition between two live workers from
/// a dead one and drop a minimal set of ranks. Cost: one small RPC per peer per interval.
/// </summary>
public sealed class PeerLiveness : IDisposable
{
    private readonly PeerChannels peers;
    private readonly int self;
    private readonly LivenessOptions options;
    private readonly CancellationTokenSource stop = new();
    /// <summary>When each peer last answered (null: never yet).</summary>
    private readonly DateTime?[] lastAnswer;
    /// <summary>Since the first step of the run: a peer that never answered counts as silent from then (peers
    /// of a launcher's static cluster may still be starting when the channels open).</summary>
    private DateTime? armedAt;
    private readonly TaskCompletionSource<string> dead = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task loop;

    public PeerLiveness(PeerChannels peers, int self, LivenessOptions options)
    {
        this.peers = peers; this.self = self; this.options = options;
        lastAnswer = new DateTime?[peers.Addresses.Count];
        loop = peers.Addresses.Count > 1 ? Task.Run(RunAsync) : Task.CompletedTask;
    }

    /// <summary>Completes with the reason when the first peer is found dead (never, while all answer); arms the check.</summary>
    public Task<string> PeerDead
    {
        get { Arm(); return dead.Task; }
    }

    /// <summary>Ranks that have not answered for longer than the timeout now (sorted).</summary>
    public IReadOnlyList<int> Unreachable
    {
        get
        {
            var now = DateTime.UtcNow;
            lock (lastAnswer) return Enumerable.Range(0, lastAnswer.Length).Where(r => Silence(r, now) > options.Timeout).ToList();
        }
    }

    /// <summary>Called at every step's wait (idempotent, cheap): from the first one on, a peer that never answered is silent.</summary>
    public void Arm()
    {
        if (armedAt is null) lock (lastAnswer) armedAt ??= DateTime.UtcNow;
    }

    /// <summary>How long rank <paramref name="r"/> has been silent (zero for this rank, and before arming for a peer that never answered).</summary>
    private TimeSpan Silence(int r, DateTime now) =>
        r == self ? TimeSpan.Zero : (lastAnswer[r] ?? armedAt) is { } since ? now - since : TimeSpan.Zero;

    private async Task RunAsync()
    {
        var pings = new Task?[peers.Addresses.Count];
        while (!stop.IsCancellationRequested)
        {
            for (int r = 0; r < pings.Length; r++)
                if (r != self && pings[r] is null or { IsCompleted: true }) pings[r] = Ping(r);
            var now = DateTime.UtcNow;
            lock (lastAnswer)
                for (int r = 0; r < lastAnswer.Length; r++)
                    if (Silence(r, now) is var silent && silent > options.Timeout)
                        dead.TrySetResult($"peer rank {r} at {peers.Addresses[r]} has not answered a liveness ping for {silent.TotalSeconds:F1} s");
            try { await Task.Delay(options.PingInterval, stop.Token); } catch (OperationCanceledException) { break; }
        }
    }

    private async Task Ping(int rank)
    {
        try
        {
            await new WorkerControl.WorkerControlClient(peers.Invoker(rank))
                .HealthAsync(new HealthRequest(), deadline: DateTime.UtcNow + options.Timeout, cancellationToken: stop.Token);
            lock (lastAnswer) lastAnswer[rank] = DateTime.UtcNow;
        }
        catch (RpcException) { /* no answer: the age grows */ }
        catch (ObjectDisposedException) { /* the run ended */ }
    }

    public void Dispose()
    {
        stop.Cancel();
        try { loop.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
        stop.Dispose();
    }
}

/// <summary>How the data plane watches its peers (<see cref="PeerLiveness"/>).</summary>
public sealed record LivenessOptions
{
    /// <summary>Between pings of every peer.</summary>
    public TimeSpan PingInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>A peer silent this long is dead (goal: a hung peer known in ≤ 10 s; a loaded 2-core
    /// machine has delayed healthy answers by over a second, hence not less).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(6);

    public void Validate()
    {
        if (PingInterval <= TimeSpan.Zero) throw new ArgumentException($"the liveness ping interval must be positive, got {PingInterval}");
        if (Timeout < PingInterval) throw new ArgumentException($"--peer-timeout-seconds ({Timeout.TotalSeconds}) must be at least the ping interval ({PingInterval.TotalSeconds} s)");
    }
}
