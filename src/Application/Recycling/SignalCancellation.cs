using System.Runtime.InteropServices;

namespace Jetpack.Application.Recycling;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM as a <see cref="CancellationToken"/>: the first signal asks the
/// running work to stop at its next check (so it can delete its temp files); a second one
/// terminates the process as usual.
/// </summary>
public sealed class SignalCancellation : IDisposable
{
    readonly CancellationTokenSource source = new();
    readonly PosixSignalRegistration interrupt;
    readonly PosixSignalRegistration terminate;

    public SignalCancellation()
    {
        interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle);
        terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle);
    }

    public CancellationToken Token => source.Token;

    void Handle(PosixSignalContext context)
    {
        if (source.IsCancellationRequested) return;   // the second signal: default handling ends the process
        context.Cancel = true;
        source.Cancel();
    }

    public void Dispose()
    {
        interrupt.Dispose();
        terminate.Dispose();
        source.Dispose();
    }
}
