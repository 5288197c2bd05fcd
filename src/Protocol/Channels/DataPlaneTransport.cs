namespace Jetpack.Protocol.Channels;

/// <summary>How the data plane's tensors travel between ranks (every worker receives both).</summary>
public enum DataPlaneTransport
{
    /// <summary>gRPC Push streams over HTTP/2 (DESIGN.md's first data plane; a tested option, not the default).</summary>
    Grpc,

    /// <summary>
    /// The same <c>DataHeader</c> messages and the same checks, framed on a plain TCP connection per
    /// sender: the bytes go from the sender's tensor storage to the socket and from the socket into
    /// the receiver's tensor storage with no copy in between. `jetpack bench exchange` measures why it
    /// exists: on this machine .NET's HTTP/2 stack moves 20–35% of what raw TCP does. The default
    /// (<see cref="DataPlaneTransports.Default"/>).
    /// </summary>
    Tcp,

    /// <summary>
    /// gRPC with the direction turned round: the receiving rank calls its source's <c>Pull</c> and the tensor comes
    /// back as a server stream. Same frames, checks and limits as <see cref="Grpc"/>; faster because Kestrel writes
    /// response DATA frames in one loop, while .NET's HTTP/2 client hands every 16 KiB frame of a request body to
    /// its writer separately (docs/measured/data-plane/). Every rank of a job must use it: a receiver pulls only
    /// from senders that offer instead of pushing.
    /// </summary>
    GrpcPull,
}

/// <summary>The one parser of transport names, shared by the worker's and the launcher's command lines.</summary>
public static class DataPlaneTransports
{
    /// <summary>
    /// The default data plane, decided by issue 20's rule: gRPC only if it reaches ≥ 80 % of TCP's
    /// all-to-all throughput between two network namespaces on an unshaped veth/bridge link. Measured
    /// (scripts/bench-netns.sh, docs/measured/data-plane/): gRPC 32 % of TCP, so TCP; gRPC stays a
    /// tested option (<c>--data-plane grpc</c>).
    /// </summary>
    public const DataPlaneTransport Default = DataPlaneTransport.Tcp;

    /// <summary>The transport named <paramref name="text"/> ("grpc", "grpc-pull" or "tcp"), for command lines and configs.</summary>
    public static DataPlaneTransport Parse(string text, string field) => text.Trim().ToLowerInvariant() switch
    {
        "grpc" => DataPlaneTransport.Grpc,
        "grpc-pull" => DataPlaneTransport.GrpcPull,
        "tcp" => DataPlaneTransport.Tcp,
        _ => throw new ArgumentException($"{field}: '{text}' is not a data-plane transport (grpc, grpc-pull or tcp)"),
    };

    /// <summary>The name <see cref="Parse"/> reads (for command lines handed to workers, and reports).</summary>
    public static string Name(this DataPlaneTransport transport) => transport switch
    {
        DataPlaneTransport.Grpc => "grpc",
        DataPlaneTransport.GrpcPull => "grpc-pull",
        DataPlaneTransport.Tcp => "tcp",
        _ => throw new ArgumentOutOfRangeException(nameof(transport), transport, null),
    };

    /// <summary>True for the planes that travel as gRPC calls (their message size is <c>--chunk-bytes</c>).</summary>
    public static bool IsGrpc(this DataPlaneTransport transport) => transport is DataPlaneTransport.Grpc or DataPlaneTransport.GrpcPull;
}
