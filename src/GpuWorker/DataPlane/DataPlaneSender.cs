using Grpc.Core;
using Jetpack.Protocol.Codec;
using Jetpack.Protocol.Wire;
using static TorchSharp.torch;

namespace Jetpack.GpuWorker.DataPlane;

/// <summary>Sends one tensor to one peer as a Push stream: the header in the first frame, then its chunks.</summary>
public static class DataPlaneSender
{
    /// <param name="readable">a contiguous CPU tensor (<see cref="TensorCodec.Readable"/>)</param>
    /// <param name="buffer">the chunk buffer, reused from send to send (never by two sends at once)</param>
    public static async Task PushAsync(Protocol.Wire.DataPlane.DataPlaneClient client, MailKey key, Tensor readable, byte[] buffer,
                                       DateTime deadline, CancellationToken ct)
    {
        var header = key.ToHeader();
        header.Tensor = TensorCodec.Header("tensor", readable);
        using var call = client.Push(deadline: deadline, cancellationToken: ct);
        try
        {
            bool first = true;
            foreach (var chunk in TensorCodec.Chunks(readable, buffer))
            {
                // WriteAsync has serialised the frame when it completes, so the buffer may be refilled
                await call.RequestStream.WriteAsync(new DataFrame { Header = first ? header : null, Data = chunk }, ct);
                first = false;
            }
            if (first) await call.RequestStream.WriteAsync(new DataFrame { Header = header }, ct);
            await call.RequestStream.CompleteAsync();
        }
        catch (Exception) when (!ct.IsCancellationRequested)
        {
            // the server may have ended the call early (a refusal): its status says why
            await call.ResponseAsync;
            throw;
        }
        await call.ResponseAsync;
    }
}
