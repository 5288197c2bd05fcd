namespace Jetpack.Coordinator.Tests.Support;

/// <summary>A clock that moves only when a test advances it: heartbeat ages become exact instead of racing a loaded machine.</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    long ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref ticks, by.Ticks);
}
