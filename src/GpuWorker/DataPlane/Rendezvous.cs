using System.Collections.Concurrent;
using Grpc.Core;
using Jetpack.Protocol.Codec;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>One key's meeting point in a <see cref="Rendezvous{TKey, TSlot, TPosted}"/>: what one side posts, and whether the other claimed it.</summary>
public class RendezvousSlot<TPosted>
{
    public readonly TaskCompletionSource<TPosted> Posted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int claimed;

    public bool IsClaimed => Volatile.Read(ref claimed) == 1;

    /// <summary>True for the first caller only.</summary>
    public bool TryClaim() => Interlocked.Exchange(ref claimed, 1) == 0;
}

/// <summary>What a claim's refusals say after the key's text: a second claim, nothing posted within the deadline, the claimer's
/// or the poster's giving up.</summary>
public sealed record ClaimWords(string Duplicate, string NotPosted, string ClaimerGaveUp, string PosterGaveUp);

/// <summary>
/// Where one side posts a value under a key and the other claims the key, once, and waits for it, whichever comes first:
/// a receiver's expectation and a sender's arrival (<see cref="PeerMailbox"/>), a sender's offer and a receiver's pull
/// (<see cref="PeerOutbox"/>). Nothing is matched by arrival order, and a claim that finds nothing within the deadline,
/// or whose caller gives up first, takes its slot with it.
/// </summary>
public sealed class Rendezvous<TKey, TSlot, TPosted> where TKey : notnull where TSlot : RendezvousSlot<TPosted>, new()
{
    private readonly ConcurrentDictionary<TKey, TSlot> slots = new();

    /// <summary>Keys waiting now.</summary>
    public int Count => slots.Count;

    /// <summary>The key's slot, made by whichever side comes first.</summary>
    public TSlot Slot(TKey key) => slots.GetOrAdd(key, _ => new TSlot());

    public bool TryGet(TKey key, out TSlot slot) => slots.TryGetValue(key, out slot!);

    public bool TryRemove(TKey key, out TSlot slot) => slots.TryRemove(key, out slot!);

    /// <summary>Removes the key only while it still holds <paramref name="slot"/> (a later one of the same key stays).</summary>
    public void Remove(TKey key, TSlot slot) => slots.TryRemove(new KeyValuePair<TKey, TSlot>(key, slot));

    /// <summary>
    /// Claims <paramref name="key"/> and waits (up to <paramref name="deadline"/>) for what is posted under it. Refusals are
    /// <see cref="RpcException"/>s beginning with <paramref name="what"/>, with the status a gRPC caller gets: a second claim
    /// InvalidArgument, nothing posted in time DeadlineExceeded, either side giving up Cancelled.
    /// </summary>
    public async Task<(TSlot Slot, TPosted Posted)> ClaimAndWait(TKey key, TimeSpan deadline, string what, ClaimWords words, CancellationToken ct)
    {
        var slot = Slot(key);
        if (!slot.TryClaim())
            throw WireErrors.Invalid($"{what}: {words.Duplicate}");
        try
        {
            return (slot, await slot.Posted.Task.WaitAsync(deadline, ct));
        }
        catch (TimeoutException)
        {
            Remove(key, slot);
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, $"{what}: {words.NotPosted} within {deadline.TotalSeconds:F0} s (stale or unknown tag)"));
        }
        catch (TaskCanceledException) when (ct.IsCancellationRequested && !slot.Posted.Task.IsCompleted)
        {
            // the claimer gave up before anything was posted (a stale arrival, an abandoned pull): its slot goes with it, else it stayed forever
            Remove(key, slot);
            throw new RpcException(new Status(StatusCode.Cancelled, $"{what}: {words.ClaimerGaveUp}"));
        }
        catch (TaskCanceledException)
        {
            throw new RpcException(new Status(StatusCode.Cancelled, $"{what}: {words.PosterGaveUp}"));
        }
    }
}
