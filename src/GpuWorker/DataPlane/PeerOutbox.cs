using System.Collections.Concurrent;
using Google.Protobuf;
using Grpc.Core;
using Jetpack.Model.Distributed;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// The sending side of the <c>grpc-pull</c> data plane (<see cref="Protocol.Channels.DataPlaneTransport.GrpcPull"/>), the
/// mirror of <see cref="PeerMailbox"/>: a rank offers a tensor to a destination rank under a <see cref="MailKey"/>, and
/// the destination's <c>Pull</c> call takes it and receives it as a server stream. Whichever comes first waits for the
/// other — a pull up to the deadline, an offer until its sender gives up — so nothing is matched by arrival order and
/// a tensor is never buffered: the offer holds the sender's own readable tensor until it has been written.
/// </summary>
public sealed class PeerOutbox(JobMembership membership, WireLimits limits, TimeSpan deadline)
{
    /// <summary>A key's offer (posted by the sender, claimed by the pull) and how its serving ended.</summary>
    private sealed class Offer : RendezvousSlot<Tensor>
    {
        public TaskCompletionSource<Tensor> Ready => Posted;
        public readonly TaskCompletionSource<long> Served = new(TaskCreationOptions.RunContinuationsAsynchronously);
        /// <summary>Cancelled when the sender withdraws: a pull that took the offer reads no further chunk of the tensor.</summary>
        public readonly CancellationTokenSource Withdrawn = new();
    }

    private readonly Rendezvous<(int Destination, MailKey Key), Offer, Tensor> offers = new();
    private readonly ConcurrentBag<byte[]> buffers = [];                  // chunk buffers of exactly ChunkBytes, one per pull in flight
    private static readonly TimeSpan WithdrawWait = TimeSpan.FromSeconds(5);

    /// <summary>Offers waiting now (for tests and diagnostics: a finished step leaves none).</summary>
    public int Pending => offers.Count;

    /// <summary>
    /// Sender: offers <paramref name="readable"/> (a contiguous CPU tensor, held until the task ends) to
    /// <paramref name="destination"/>; completes with the bytes written once its pull has streamed them, fails when the
    /// pull breaks, and is withdrawn when <paramref name="ct"/> is cancelled (the exchange's deadline or abort).
    /// </summary>
    public async Task<long> OfferAsync(int destination, MailKey key, Tensor readable, CancellationToken ct)
    {
        var slot = offers.Slot((destination, key));
        if (!slot.Ready.TrySetResult(readable))
            throw new InvalidOperationException($"rank {membership.Rank}: {key} to rank {destination} is already offered (a tag was reused)");
        try
        {
            return await slot.Served.Task.WaitAsync(ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The caller frees the tensor once this returns. A pull that took the offer checks Withdrawn before it
            // copies each chunk, so once it has stopped (Served ends) nothing reads the tensor any more.
            slot.Withdrawn.Cancel();
            if (slot.IsClaimed)
                try { await slot.Served.Task.WaitAsync(WithdrawWait); } catch (Exception) { /* failed or slow: it copies no further chunk */ }
            throw;
        }
        finally
        {
            // withdrawn or served: a later pull of the key finds nothing and waits out the deadline
            offers.Remove((destination, key), slot);
            slot.Ready.TrySetCanceled();
        }
    }

    /// <summary>
    /// Server side of one <c>Pull</c>: checks who asks and for what (the first message of <paramref name="requests"/>),
    /// waits (up to the deadline) for the offer, then writes the header and the tensor's chunks to <paramref name="stream"/>
    /// and waits for the destination's verdict: the offer is served once it was taken whole, and fails with the
    /// destination's status when it was refused (as a Push's sender fails). Refusals here are <see cref="RpcException"/>s
    /// naming this rank, the key and the destination.
    /// </summary>
    public async Task Serve(IAsyncStreamReader<PullMessage> requests, IServerStreamWriter<DataFrame> stream, CancellationToken ct)
    {
        if (!await requests.MoveNext(ct) || requests.Current.Request is not { } request)
            throw WireErrors.Invalid($"rank {membership.Rank}: a pull must open with its request (key and destination rank)");
        var header = request.Key ?? throw WireErrors.Invalid($"rank {membership.Rank}: a pull without a key (job, source rank, tag)");
        int destination = request.DestinationRank;
        membership.CheckSender(new DataHeader { JobId = header.JobId, SourceRank = destination });   // the caller is a rank of this job, not this one
        if (header.SourceRank != membership.Rank)
            throw WireErrors.Invalid($"rank {membership.Rank}: rank {destination} pulled a tensor from rank {header.SourceRank} here");
        var key = MailKey.From(header)
                  ?? throw WireErrors.Invalid($"rank {membership.Rank}: pull from rank {destination} has no tag (exchange or reduce tag with a phase is required)");
        string what = $"rank {membership.Rank}: {key} pulled by rank {destination}";

        var (slot, readable) = await offers.ClaimAndWait((destination, key), deadline, what,
            new ClaimWords("duplicate pull (this key was already pulled)", "not offered by this rank", $"rank {destination} gave up on this key", "the sender gave up on this key"), ct);

        var buffer = buffers.TryTake(out var b) ? b : new byte[limits.ChunkBytes];
        using var refused = new CancellationTokenSource();
        using var writing = CancellationTokenSource.CreateLinkedTokenSource(ct, slot.Withdrawn.Token, refused.Token);
        var verdict = VerdictAsync(requests, destination, what, refused, ct);   // read while writing: a refusal stops the writes
        try
        {
            writing.Token.ThrowIfCancellationRequested();                   // withdrawn while this pull waited: touch nothing of it
            DataFrame frame = new() { Header = key.ToHeader() };
            frame.Header.Tensor = TensorCodec.Header("tensor", readable);
            long total = frame.Header.Tensor.ByteLength, sent = 0;
            do
            {
                writing.Token.ThrowIfCancellationRequested();               // withdrawn: the tensor may be freed, read no more of it
                int n = TensorCodec.CopyChunk(readable, sent, buffer);
                frame.Data = UnsafeByteOperations.UnsafeWrap(buffer.AsMemory(0, n));
                // WriteAsync has serialised the frame when it completes, so the buffer may be refilled
                await stream.WriteAsync(frame, writing.Token);
                sent += n;
                frame = new DataFrame();
            } while (sent < total);
            if (await verdict.WaitAsync(writing.Token) is { } notTaken) throw notTaken;
            slot.Served.TrySetResult(sent);
        }
        catch (Exception e)
        {
            // refused: the offer fails with the destination's own status and reason, and the call ends quietly (its caller has moved on)
            if (refused.IsCancellationRequested && await verdict is RpcException refusal)
            {
                slot.Served.TrySetException(refusal);
                return;
            }
            slot.Served.TrySetException(new ExchangeFailedException($"{what}: the stream broke: {e.Message}", e));
            throw;
        }
        finally
        {
            buffers.Add(buffer);
        }
    }

    /// <summary>
    /// The destination's verdict on a pulled tensor: null when it took it whole, its refusal as the <see cref="RpcException"/> a
    /// Push's sender would get (and <paramref name="refused"/> cancelled, so no further chunk is written), or an
    /// <see cref="ExchangeFailedException"/> when the call ended without one. Never throws.
    /// </summary>
    private static async Task<Exception?> VerdictAsync(IAsyncStreamReader<PullMessage> requests, int destination, string what,
                                                       CancellationTokenSource refused, CancellationToken ct)
    {
        try
        {
            if (!await requests.MoveNext(ct) || requests.Current.Verdict is not { } verdict)
                return new ExchangeFailedException($"{what}: rank {destination} ended the pull without a verdict on the tensor");
            if (verdict.StatusCode == (int)StatusCode.OK) return null;
            var refusal = new RpcException(new Status((StatusCode)verdict.StatusCode, verdict.Detail));
            refused.Cancel();
            return refusal;
        }
        catch (Exception e)
        {
            return new ExchangeFailedException($"{what}: the stream broke before rank {destination}'s verdict: {e.Message}", e);
        }
    }
}
