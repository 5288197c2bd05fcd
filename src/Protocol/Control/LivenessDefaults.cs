namespace Jetpack.Protocol.Control;

/// <summary>
/// The heartbeat defaults both sides share (issue 20: a lost worker known in ≤ 10 s; with the former
/// 3 s interval and 15 s timeout a downed link took 15.8 s). The worker heartbeats every
/// <see cref="HeartbeatInterval"/>; the coordinator counts it dead after <see cref="HeartbeatTimeout"/>
/// (three and a half intervals, so one late heartbeat on a loaded machine is not a death).
/// </summary>
public static class LivenessDefaults
{
    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(2);
    public static readonly TimeSpan HeartbeatTimeout = TimeSpan.FromSeconds(7);
}
