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

    /// <summary>The transport named <paramref name="text"/> ("grpc" or "tcp"), for command lines and configs.</summary>
    public static DataPlaneTransport Parse(string text, string field) => text.Trim().ToLowerInvariant() switch
    {
        "grpc" => DataPlaneTransport.Grpc,
        "tcp" => DataPlaneTransport.Tcp,
        _ => throw new ArgumentException($"{field}: '{text}' is not a data-plane transport (grpc or tcp)"),
    };
}
