using Grpc.Core;
using Jetpack.Model.Distributed;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>
/// What a receiver expects under one key: dtype, shape, and either the buffer to fill or the device
/// the received tensor must be placed on (null: the mailbox's <see cref="TensorPlacement.Device"/>).
/// </summary>
public sealed record Expectation(ScalarType Dtype, long[] Shape, Tensor? Destination = null, Device? Device = null);

/// <summary>
/// The receiving side of the data plane. A rank posts what it expects under a <see cref="MailKey"/>
/// before it sends anything itself; an arriving stream waits (up to the deadline) for that
/// expectation, is validated against it — dtype, shape, size — before any tensor exists, and is
/// then copied straight into its destination. So a sender that runs ahead is held by HTTP/2 flow
/// control rather than buffered, and every refusal names the key (job, step, phase, source rank).
/// </summary>
public sealed class PeerMailbox(JobMembership membership, WireLimits limits, TimeSpan deadline, TensorPlacement? placement = null)
{
    private readonly TensorPlacement placement = placement ?? new TensorPlacement();

    /// <summary>A key's expectation (posted by the receiver, claimed by the arrival) and the tensor that arrived.</summary>
    private sealed class Slot : RendezvousSlot<Expectation>
    {
        public TaskCompletionSource<Expectation> Expected => Posted;
        public readonly TaskCompletionSource<Tensor> Arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private readonly Rendezvous<MailKey, Slot, Expectation> slots = new();
    private static readonly ClaimWords Words = new("duplicate message (this key was already delivered)", "not expected by this rank",
                                                   "the sender gave up on this key", "the receiver gave up on this key");

    public JobMembership Membership => membership;
    public WireLimits Limits => limits;
    public TimeSpan Deadline => deadline;
    /// <summary>Allocates what arrives and places it on the rank's device.</summary>
    public TensorPlacement Placement => placement;

    /// <summary>Keys waiting now (for tests and diagnostics: a finished step leaves none).</summary>
    public int Pending => slots.Count;

    /// <summary>What this rank offers its peers' pulls (the <c>grpc-pull</c> transport's sending side).</summary>
    public PeerOutbox Outbox { get; } = new(membership, limits, deadline);

    /// <summary>Receiver: posts the expectation; the task completes with the tensor or fails naming the key.</summary>
    public Task<Tensor> Expect(MailKey key, Expectation e)
    {
        var slot = slots.Slot(key);
        if (!slot.Expected.TrySetResult(e))
            throw new InvalidOperationException($"rank {membership.Rank}: {key} is already expected (a tag was reused)");
        return slot.Arrived.Task;
    }

    /// <summary>Receiver: drops a key once it was received or given up (a late arrival then finds no slot and waits out the deadline).</summary>
    public void Forget(MailKey key)
    {
        if (!slots.TryRemove(key, out var slot)) return;
        slot.Expected.TrySetCanceled();
        slot.Arrived.TrySetCanceled();
    }

    /// <summary>
    /// Receiver side of a pull that broke before its tensor came whole (refused, unreachable, cut): fails the
    /// key's receive with <paramref name="e"/>, unless it already ended.
    /// </summary>
    public void Fail(MailKey key, Exception e)
    {
        if (slots.TryGet(key, out var slot)) slot.Arrived.TrySetException(e);
    }

    /// <summary>
    /// Server side of one gRPC Push: <paramref name="header"/> came in the first frame with
    /// <paramref name="firstData"/>; the rest of the frames follow in <paramref name="rest"/>.
    /// Returns the bytes received.
    /// </summary>
    /// <param name="goesOn">the stream goes on after the tensor (a Pull's waits for this rank's verdict): read only up to its
    /// last byte, not to the stream's end</param>
    public Task<long> Deliver(DataHeader header, ReadOnlyMemory<byte> firstData, IAsyncStreamReader<DataFrame> rest, CancellationToken ct, bool goesOn = false) =>
        Deliver(header, async (asm, what, token) =>
        {
            asm.Append(firstData.Span);
            while (!(goesOn && asm.Received == header.Tensor.ByteLength) && await rest.MoveNext(token))
            {
                var frame = rest.Current;
                if (frame.Header is not null) throw WireErrors.Invalid($"{what}: a second header inside one tensor's stream");
                asm.Append(frame.Data.Span);
            }
        }, ct);

    /// <summary>
    /// Server side of one tensor, whatever the transport: checks the sender and the header, waits (up
    /// to the deadline) for the receiver's expectation, validates against it, then lets
    /// <paramref name="fill"/> bring the bytes into the assembler (it is given the key's text for its
    /// errors). Refusals are <see cref="RpcException"/>s with the status a gRPC caller would get.
    /// </summary>
    public async Task<long> Deliver(DataHeader header, Func<TensorAssembler, string, CancellationToken, Task> fill, CancellationToken ct)
    {
        membership.CheckSender(header);
        var key = MailKey.From(header)
                  ?? throw WireErrors.Invalid($"rank {membership.Rank}: message from rank {header.SourceRank} has no tag (exchange or reduce tag with a phase is required)");
        string what = $"rank {membership.Rank}: {key}";
        TensorCodec.ValidateHeader(header.Tensor, limits, what);    // oversize and malformed: refused before waiting

        var (slot, e) = await slots.ClaimAndWait(key, deadline, what, Words, ct);

        long received = 0;
        try
        {
            TensorCodec.Validate(header.Tensor, e.Dtype, e.Shape, limits, what);
            using var asm = new TensorAssembler(header.Tensor, e.Dtype, what, e.Destination, placement, e.Device);
            await fill(asm, what, ct);
            received = asm.Received;
            if (!slot.Arrived.TrySetResult(asm.Complete())) { /* the receiver already gave up */ }
            return received;
        }
        catch (RpcException x) when (x.StatusCode == StatusCode.InvalidArgument)
        {
            slot.Arrived.TrySetException(new ExchangeFailedException($"{x.Status.Detail}"));
            throw;
        }
        catch (Exception x) when (x is not RpcException)
        {
            slot.Arrived.TrySetException(new ExchangeFailedException($"{what}: the stream broke: {x.Message}", x));
            throw new RpcException(new Status(StatusCode.Aborted, $"{what}: {x.Message}"));
        }
        catch (RpcException x)
        {
            slot.Arrived.TrySetException(new ExchangeFailedException($"{what}: the stream broke: {x.Status.Detail}", x));
            throw;
        }
    }
}
