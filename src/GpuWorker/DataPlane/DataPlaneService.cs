using Grpc.Core;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Wire;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>The gRPC edge of the data plane: a Push's stream goes to the mailbox, a Pull is served from its outbox.</summary>
public sealed class DataPlaneService(PeerMailbox mailbox) : Protocol.Wire.DataPlane.DataPlaneBase
{
    public override async Task<DataAck> Push(IAsyncStreamReader<DataFrame> requestStream, ServerCallContext context)
    {
        if (!await requestStream.MoveNext(context.CancellationToken))
            throw WireErrors.Invalid($"rank {mailbox.Membership.Rank}: empty data-plane stream");
        var first = requestStream.Current;
        if (first.Header is null)
            throw WireErrors.Invalid($"rank {mailbox.Membership.Rank}: the first frame has no header (job, source rank, tag, tensor)");
        long n = await mailbox.Deliver(first.Header, first.Data.Memory, requestStream, context.CancellationToken);
        return new DataAck { BytesReceived = n };
    }

    public override Task Pull(IAsyncStreamReader<PullMessage> requestStream, IServerStreamWriter<DataFrame> responseStream, ServerCallContext context) =>
        mailbox.Outbox.Serve(requestStream, responseStream, context.CancellationToken);
}
